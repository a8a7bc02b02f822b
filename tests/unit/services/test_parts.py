"""The services' smaller parts without servers: the in-memory session matrix against brute
force, the search cache over a dict, the page's security headers, retention, the lag gauge and
the publisher ingest declares."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from faststream.kafka import KafkaBroker
from pgvector import Vector

from libs.common.db.faces import FaceChanges, Lending, SessionFaces, SessionVersion
from libs.common.kafka import PartitionLag
from libs.common.metrics import CONSUMER_LAG
from services.embedder import lag
from services.ingest.publishing import declare_uploaded_publisher
from services.ingest.retention import erase_expired
from services.search_api.cache import CacheKeyParts, SearchCache
from services.search_api.matrices import SessionMatrix
from services.search_api.schemas import (
    MatchedFace,
    QueryExpansion,
    QueryFace,
    SearchResponse,
    SearchResult,
)
from services.search_api.web.pages import content_security_policy, origin_of
from tests.support.fakes import FakeObjectStore, FakePhotoDb, fake_runtime

VERSION = SessionVersion(datetime.now(UTC), 7, datetime.now(UTC))


def test_the_session_matrix_answers_what_brute_force_answers() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    photo_ids = [f"p{i % 40:02d}" for i in range(300)]
    faces = SessionFaces(VERSION, photo_ids, [[i, i, i + 1, i + 1] for i in range(300)],
                         [Vector(v) for v in vectors])  # fmt: skip
    matrix = SessionMatrix.build(faces)
    query = rng.standard_normal(16).astype(np.float32)
    found = matrix.search(query, threshold=0.1, limit=15)

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ (query / np.linalg.norm(query))
    best: dict[str, tuple[float, int]] = {}
    for i, photo in enumerate(photo_ids):
        if sims[i] >= 0.1 and (photo not in best or sims[i] > best[photo][0]):
            best[photo] = (float(sims[i]), i)
    expected = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:15]
    assert [m.photo_id for m in found] == [photo for photo, _ in expected]
    for match, (_, (sim, index)) in zip(found, expected, strict=True):
        assert match.similarity == pytest.approx(sim, abs=1e-5)
        assert match.bbox == [index, index, index + 1, index + 1]


def _faces(rng: np.random.Generator, photos: dict[str, int], seq: int) -> SessionFaces:
    """Random faces, `photos` maps each photo to its face count; bbox x1 = a running number."""
    ids = [p for p, n in photos.items() for _ in range(n)]
    vectors = rng.standard_normal((len(ids), 16)).astype(np.float32)
    boxes = [[float(seq * 1000 + i), 0, 1, 1] for i in range(len(ids))]
    version = SessionVersion(VERSION.changed_at, seq, VERSION.created_at)
    return SessionFaces(version, ids, boxes, [Vector(v) for v in vectors])


def _joined(kept: SessionFaces, added: SessionFaces, dropped: set[str]) -> SessionFaces:
    keep = [i for i, p in enumerate(kept.photo_ids) if p not in dropped]
    return SessionFaces(
        added.version,
        [kept.photo_ids[i] for i in keep] + added.photo_ids,
        [kept.bboxes[i] for i in keep] + added.bboxes,
        [kept.embeddings[i] for i in keep] + added.embeddings,
    )


def test_an_updated_matrix_answers_like_one_built_from_the_changed_session() -> None:
    """Changes (photos dropped, re-indexed with other faces, added) applied to a held matrix,
    several times (its buffers grow), give the answers of a matrix built from scratch."""
    rng = np.random.default_rng(8)
    start = _faces(rng, {f"p{i:02d}": 3 for i in range(40)}, 1)
    matrix, truth = SessionMatrix.build(start), start
    older = matrix
    for seq in range(2, 8):
        changed = {f"p{rng.integers(40):02d}" for _ in range(3)} | {f"new{seq}"}
        added = _faces(rng, {p: int(rng.integers(0, 3)) for p in sorted(changed)}, seq)
        matrix = matrix.updated(FaceChanges(seq - 1, sorted(changed), added))
        truth = _joined(truth, added, changed)
        rebuilt = SessionMatrix.build(truth)
        assert matrix.version.change_seq == seq and matrix.faces == len(truth.photo_ids)
        for _ in range(4):
            query = rng.standard_normal(16).astype(np.float32)
            for threshold, limit in ((0.1, 15), (-1.0, 1000)):
                got = matrix.search(query, threshold, limit)
                want = rebuilt.search(query, threshold, limit)
                assert [(m.photo_id, m.bbox) for m in got] == [(m.photo_id, m.bbox) for m in want]
                assert [m.similarity for m in got] == pytest.approx([m.similarity for m in want])
    # An older generation still answers as of its own version (a search may be reading it).
    assert older.faces == 120 and older.version.change_seq == 1
    assert {m.photo_id for m in older.search(query, -1.0, 1000)} == {f"p{i:02d}" for i in range(40)}


class DictRedis:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def set(self, key: str, value: Any, ex: int | None = None, nx: bool = False) -> None:
        if not (nx and key in self.data):
            self.data[key] = value.encode() if isinstance(value, str) else value

    async def get(self, key: str) -> Any:
        return self.data.get(key)


async def test_the_cache_keeps_the_answer_and_never_the_selfie() -> None:
    redis = DictRedis()
    cache = SearchCache(redis, ttl_s=60, secret=None)  # type: ignore[arg-type]
    parts = CacheKeyParts("s1", VERSION, 0.4, 10, "pack@1", False, None)
    selfie = b"\xff\xd8 selfie bytes"
    key = await cache.key([selfie], parts)
    result = SearchResult("p1", 0.9, MatchedFace([1, 2, 3, 4]), "t", "p", "o", 40, 30, "o")
    answer = SearchResponse("s1", [result],
                            QueryFace([0, 0, 9, 9], 0.99, 1), 0.4, 12.0,
                            QueryExpansion(used=True, faces=2))  # fmt: skip
    await cache.put(key, answer)
    assert await cache.get(key) == answer
    assert all(selfie not in v for v in redis.data.values())
    other = await cache.key([selfie], replace(parts, threshold=0.5))
    assert other != key and await cache.get(other) is None
    redis.data[key] = b"{not the answer}"
    assert await cache.get(key) is None  # an unreadable entry is a miss, not an error


async def test_the_cache_key_follows_the_switches_that_change_the_answer() -> None:
    cache = SearchCache(DictRedis(), ttl_s=60, secret=b"k" * 32)  # type: ignore[arg-type]
    parts = CacheKeyParts("s1", VERSION, 0.4, 10, "pack@1", False, None)
    variants = [
        parts,
        replace(parts, selfie_flip=True),
        replace(parts, lending=Lending(0.6, 5)),
        replace(parts, originals=False),
        replace(parts, fusion="max"),
        replace(parts, lending=Lending(0.7, 5)),
        replace(parts, lending=Lending(0.6, 3)),
    ]
    keys = [await cache.key([b"selfie"], v) for v in variants]
    assert len(set(keys)) == len(keys)
    assert await cache.key([b"selfie"], replace(parts)) == keys[0]


async def test_several_selfies_key_one_entry_whatever_their_order() -> None:
    cache = SearchCache(DictRedis(), ttl_s=60, secret=b"k" * 32)  # type: ignore[arg-type]
    parts = CacheKeyParts("s1", VERSION, 0.4, 10, "pack@1", False, None)
    both = await cache.key([b"front", b"side"], parts)
    assert both == await cache.key([b"side", b"front"], parts)
    assert both not in {await cache.key([b"front"], parts), await cache.key([b"side"], parts)}


def test_the_page_may_load_photos_only_from_the_s3_origin() -> None:
    origin = origin_of("https://user:pw@photos.example:9000/bucket/key?sig=1")
    assert origin == "https://photos.example:9000"
    policy = content_security_policy(origin)
    assert "default-src 'none'" in policy and f"img-src 'self' blob: data: {origin}" in policy


async def test_retention_erases_every_expired_session(
    db: FakePhotoDb, store: FakeObjectStore
) -> None:
    db.expired = {"old-1", "old-2"}
    store.objects[(store.bucket, "sessions/old-1/photos/p/1")] = b"x"
    store.objects[(store.bucket, "sessions/kept/photos/p/1")] = b"y"
    assert await erase_expired(fake_runtime(store=store)) == ["old-1", "old-2"]
    assert store.keys() == ["sessions/kept/photos/p/1"]


async def test_the_lag_job_sets_the_gauge(monkeypatch: pytest.MonkeyPatch) -> None:
    async def rows(*args: Any) -> list[PartitionLag]:
        return [PartitionLag(partition=3, committed=10, end=17)]

    monkeypatch.setattr(lag, "consumer_lag", rows)
    runtime = fake_runtime()
    gauge = CONSUMER_LAG.labels(runtime.settings.kafka.topic_uploaded, "3")
    gauge.set(0)
    job = asyncio.create_task(lag.report_lag(runtime))
    try:
        for _ in range(100):  # the first round runs before the job's first sleep
            if gauge._value.get() == 7:
                break
            await asyncio.sleep(0.01)
    finally:
        job.cancel()
    assert gauge._value.get() == 7


async def test_ingest_declares_what_it_publishes() -> None:
    broker = KafkaBroker("127.0.0.1:1")
    runtime = fake_runtime(broker=broker)
    assert broker.publishers == []
    await declare_uploaded_publisher(runtime)
    assert [p.topic for p in broker.publishers] == [runtime.settings.kafka.topic_uploaded]
