"""What the suites do to a running FacePass: index photos over HTTP and wait until every one is
searchable (its `photos.indexed` event, or its DLQ event, has been published), and search.

"Searchable" is read from the `photos.indexed` topic rather than by polling: the embedder
publishes that event only after the photo's rows are committed, and the event carries the
embedder's own stage timings, which give the per-stage breakdown of P1.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from bench.harness import API_KEY, Bench, Server


@dataclass
class IndexRun:
    """One batch of photos indexed end to end."""

    photos: int
    wall_s: float  # first POST → last photo searchable
    post_wall_s: float  # first POST → last 202
    post_ms: list[float] = field(default_factory=list)
    indexed: dict[str, dict[str, Any]] = field(default_factory=dict)  # photo id → event
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)  # photo id → DLQ event
    rejected: dict[str, int] = field(default_factory=dict)  # HTTP status → count

    @property
    def photos_per_s(self) -> float:
        return len(self.indexed) / self.wall_s if self.wall_s else 0.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _watch(
    bench: Bench, session_id: str, wanted: set[str], run: IndexRun, ready: asyncio.Event
) -> float:
    """Consume indexed + DLQ events of `session_id` until every wanted photo has one; returns
    the monotonic time the last one arrived."""
    kafka = bench.settings.kafka
    consumer = AIOKafkaConsumer(
        kafka.topic_indexed,
        kafka.topic_dlq,
        bootstrap_servers=kafka.bootstrap,
        group_id=f"bench-watch-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    ready.set()
    last = time.perf_counter()
    try:
        while wanted - run.indexed.keys() - run.failed.keys():
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    value = json.loads(record.value or b"{}")
                    if value.get("session_id") != session_id:
                        continue
                    photo_id = value.get("photo_id")
                    into = run.failed if record.topic == kafka.topic_dlq else run.indexed
                    if photo_id in wanted and photo_id not in into:
                        into[photo_id] = value
                        last = time.perf_counter()
        return last
    finally:
        await consumer.stop()


async def index_photos(
    bench: Bench,
    server: Server,
    session_id: str,
    photos: list[tuple[str, bytes]],
    *,
    concurrency: int = 4,
    timeout_s: float = 900,
) -> IndexRun:
    """POST every (photo id, JPEG) to /api/v2/index, `concurrency` at a time, and wait until
    all are searchable (or failed)."""
    run = IndexRun(photos=len(photos), wall_s=0.0, post_wall_s=0.0)
    ready = asyncio.Event()
    wanted = {p for p, _ in photos}
    watcher: asyncio.Task[float] = asyncio.create_task(
        _watch(bench, session_id, wanted, run, ready)
    )
    await ready.wait()
    slots = asyncio.Semaphore(concurrency)
    start = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"X-API-Key": API_KEY}, timeout=120
    ) as client:

        async def post(photo_id: str, data: bytes) -> None:
            async with slots:
                t0 = time.perf_counter()
                response = await client.post(
                    "/api/v2/index",
                    data={"photo_id": photo_id, "session_id": session_id},
                    files={"file": (f"{photo_id}.jpg", data, "image/jpeg")},
                )
                run.post_ms.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 202:
                    key = str(response.status_code)
                    run.rejected[key] = run.rejected.get(key, 0) + 1
                    run.failed[photo_id] = {"http": response.status_code}

        await asyncio.gather(*(post(p, d) for p, d in photos))
    run.post_wall_s = time.perf_counter() - start
    last = await asyncio.wait_for(watcher, timeout_s)
    run.wall_s = last - start
    return run


#: What one search sends: one selfie, or several of one person (repeated `file` parts).
Selfie = bytes | tuple[bytes, ...]


def search(
    client: httpx.Client, session_id: str, selfie: Selfie, **form: float | int
) -> httpx.Response:
    selfies = (selfie,) if isinstance(selfie, bytes) else selfie
    return client.post(
        "/api/v2/search",
        data={"session_id": session_id, **{k: str(v) for k, v in form.items()}},
        files=[("file", ("selfie.jpg", data, "image/jpeg")) for data in selfies],
    )


def metric_total(server: Server, name: str, **labels: str) -> float:
    """Sum of a Prometheus counter's samples on the server whose labels include `labels`."""
    text = httpx.get(f"{server.base_url}/api/v2/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric not in (name, f"{name}_total"):
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
    return total
