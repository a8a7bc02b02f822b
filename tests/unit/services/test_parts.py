"""The services' smaller parts without servers: the search cache over a dict, the page's
security headers, retention, the lag gauge and the publisher ingest declares (the in-memory
session matrix: test_matrix.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.kafka import KafkaBroker

from libs.common.db.faces import Lending, SessionVersion
from libs.common.kafka import PartitionLag
from libs.common.metrics import CONSUMER_LAG
from services.embedder import lag
from services.ingest.publishing import declare_uploaded_publisher
from services.ingest.retention import erase_expired
from services.search_api.cache import CacheKeyParts, SearchCache
from services.search_api.schemas import (
    MatchedFace,
    QueryExpansion,
    QueryFace,
    SearchResponse,
    SearchResult,
)
from services.search_api.web.pages import content_security_policy, origin_of
from tests.support.fake_db import FakePhotoDb
from tests.support.fakes import FakeObjectStore, fake_runtime

VERSION = SessionVersion(datetime.now(UTC), 7, datetime.now(UTC))


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
