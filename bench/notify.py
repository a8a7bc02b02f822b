"""N1 — notify me: what matching costs the embedder, and how soon a subscriber's event follows.

1. The cost: the embedder's own matcher (services/embedder/matching.py) on the bench stack's
   PostgreSQL, for photos of 5 faces written into a session with 10,000 live subscriptions
   (random people; one photo in ten shows one of them, so matches are recorded too), against
   the same photos in a session that never had one. The difference is what the subscriptions
   add per photo. The first photo after a subscription is made reloads the session's
   subscriptions; that load is timed on its own.
2. The delay: an `all` server indexes photos of a subscriber's person (t1.jpg at other sizes)
   through the HTTP API; each photo's `photos.matched` record's timestamp minus its
   `photos.indexed` record's (both set when the embedder sends them).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
from aiokafka import AIOKafkaConsumer

from bench.client import index_photos, unique
from bench.data import T1, jpeg
from bench.harness import API_KEY, Bench
from bench.vectors import normalise, percentiles
from libs.common.db.pool import create_pool
from libs.common.face.results import Face, PhotoFaces
from services.embedder.matching import SubscriptionMatcher

SUBSCRIPTIONS = 10_000
PHOTOS = 200
NEW_PHOTOS = 20  # indexed through the API for the delay
FACES = 5
DIM = 512
MODEL = "bench-notify"
T1_LEFT = (0, 0, 1280 // 3, 886)  # t1.jpg's left-most person


def _photo(vectors: np.ndarray) -> PhotoFaces:
    faces = tuple(Face((0.0, 0.0, 9.0, 9.0), ((0.0, 0.0),) * 5, 0.9, v) for v in vectors)
    return PhotoFaces(faces, (), 4000, 3000, {})


async def _session(pool: Any, session: str, photos: list[str]) -> None:
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO sessions (session_id) VALUES ($1)", session)
        await conn.copy_records_to_table(
            "photos", columns=["photo_id", "session_id", "status", "object_key"],
            records=[(p, session, "indexed", p) for p in photos],
        )  # fmt: skip


async def matching_cost(
    bench: Bench, progress: Callable[[str], None], subscriptions: int, photo_count: int
) -> dict[str, Any]:
    rng = np.random.default_rng(16)
    people = normalise(rng.standard_normal((subscriptions, DIM), dtype=np.float32))
    tag = uuid.uuid4().hex[:8]
    busy, quiet = f"notify-busy-{tag}", f"notify-quiet-{tag}"
    photos = {s: [f"{s}-p{i}" for i in range(photo_count)] for s in (busy, quiet)}
    faces = [
        normalise(rng.standard_normal((FACES, DIM), dtype=np.float32)) for _ in range(photo_count)
    ]
    for i in range(0, photo_count, 10):  # one photo in ten shows a subscriber
        faces[i][0] = normalise(people[i] + rng.standard_normal(DIM, dtype=np.float32) * 0.02)
    pool = await create_pool(bench.settings.postgres)
    try:
        for session in (busy, quiet):
            await _session(pool, session, photos[session])
        now = datetime.now(UTC)
        async with pool.acquire() as conn:
            await conn.copy_records_to_table(
                "match_subscriptions",
                columns=["subscription_id", "token_sha256", "session_id", "model_id",
                         "embedding", "threshold", "consented_at", "expires_at"],
                records=[
                    (f"{tag}-s{i}", uuid.uuid4().bytes * 2, busy, MODEL, people[i], 0.36,
                     now, now + timedelta(days=14))
                    for i in range(subscriptions)
                ],
            )  # fmt: skip
            await conn.execute(
                "UPDATE sessions SET subscriptions_seq = nextval('face_change_seq') "
                "WHERE session_id = $1",
                busy,
            )
        progress(f"notify: {subscriptions:,} subscriptions made; matching {photo_count} photos")
        matcher = SubscriptionMatcher(lambda: pool)
        start = time.perf_counter()
        await matcher.matched(busy, MODEL, f"{busy}-p1", _photo(faces[1]))  # loads them
        load_s = time.perf_counter() - start
        timings: dict[str, list[float]] = {busy: [], quiet: []}
        matched = 0
        for i in range(photo_count):
            for session in (busy, quiet):
                start = time.perf_counter()
                events = await matcher.matched(session, MODEL, photos[session][i], _photo(faces[i]))
                timings[session].append(time.perf_counter() - start)
                matched += len(events) if session == busy else 0
        added = [b - q for b, q in zip(timings[busy], timings[quiet], strict=True)]
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM sessions WHERE session_id = ANY($1)", [busy, quiet])
    finally:
        await pool.close()
    return {
        "subscriptions": subscriptions,
        "photos": photo_count,
        "faces_per_photo": FACES,
        "photos_matched": matched,
        "with_subscriptions": percentiles(timings[busy]),
        "without": percentiles(timings[quiet]),
        "added": percentiles(added),
        "reload_after_a_change_ms": round(load_s * 1000, 1),
    }


async def _record_times(bench: Bench, session: str, topic: str, want: int) -> dict[str, float]:
    """photo id → the record timestamp (s) of its first event on `topic` in `session`."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bench.settings.kafka.bootstrap,
        group_id=f"bench-notify-{uuid.uuid4().hex}", auto_offset_reset="earliest",
        enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 120
    try:
        while len(seen) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    value = json.loads(record.value or b"{}")
                    if value.get("session_id") == session:
                        seen.setdefault(value["photo_id"], record.timestamp / 1000)
    finally:
        await consumer.stop()
    return seen


async def matched_delay(
    bench: Bench, progress: Callable[[str], None], photo_count: int
) -> dict[str, Any]:
    session = unique("notify")
    with bench.serve("all") as server:
        await index_photos(bench, server, session, [(f"{session}-group", T1.read_bytes())])
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            made = await client.post(
                "/api/v2/subscriptions",
                data={"session_id": session, "consent": "true"},
                files={"file": ("selfie.jpg", jpeg(T1, crop=T1_LEFT), "image/jpeg")},
                headers={"X-API-Key": API_KEY},
            )
        made.raise_for_status()
        scales = [0.55 + 0.4 * i / photo_count for i in range(photo_count)]
        new = [(f"{session}-s{i}", jpeg(T1, scale=s)) for i, s in enumerate(scales)]
        progress(f"notify: indexing {len(new)} photos of a subscriber")
        await index_photos(bench, server, session, new)
    kafka = bench.settings.kafka
    indexed = await _record_times(bench, session, kafka.topic_indexed, len(new) + 1)
    matched = await _record_times(bench, session, kafka.topic_matched, len(new))
    delays = [matched[p] - indexed[p] for p in matched if p in indexed]
    arr = np.asarray(delays or [float("nan")])
    return {
        "photos": len(new),
        "matched": len(matched),
        "p50_s": round(float(np.percentile(arr, 50)), 3),
        "p95_s": round(float(np.percentile(arr, 95)), 3),
        "max_s": round(float(arr.max()), 3),
    }


def run(
    bench: Bench,
    progress: Callable[[str], None],
    *,
    subscriptions: int = SUBSCRIPTIONS,
    photos: int = PHOTOS,
    new_photos: int = NEW_PHOTOS,
) -> dict[str, Any]:
    cost = asyncio.run(matching_cost(bench, progress, subscriptions, photos))
    delay = asyncio.run(matched_delay(bench, progress, new_photos))
    return {"matching": cost, "matched_after_indexed": delay}
