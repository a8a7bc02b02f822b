"""The embedder's steps one by one (services/embedder/steps.py, outcomes.py), without servers."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from libs.common.db.photos import WriteResult
from libs.common.log import REQUEST_ID_HEADER
from libs.common.settings import FaceSettings
from services.embedder import steps
from services.embedder.outcomes import dlq_event, indexed_event, photo_id_from_key
from services.embedder.records import RawRecord, raw_records
from tests.support.fake_db import FakePhotoDb
from tests.support.fakes import FakeEngine, FakeObjectStore, plain_jpeg, uploaded

#: The fake database functions ignore the pool.
POOL: Any = object()


def record(value: bytes, key: bytes | None = b"p1", offset: int = 7) -> RawRecord:
    return RawRecord("facepass.photos.uploaded.v1", 2, offset, key, value, {})


def test_parse_reads_the_event_and_its_request_id() -> None:
    event = uploaded("p1")
    raw = RawRecord(
        "t", 0, 1, b"p1", event.model_dump_json().encode(), {REQUEST_ID_HEADER: b"req-9"}
    )
    photo = steps.parse(raw)
    assert photo.event == event
    assert photo.request_id == "req-9"


@pytest.mark.parametrize(
    "value", [b"not json", b'{"photo_id": "p1"}', b'{"photo_id": "../x", "session_id": "s"}']
)
def test_parse_refuses_what_is_not_an_uploaded_event(value: bytes) -> None:
    with pytest.raises(steps.PhotoFault) as caught:
        steps.parse(record(value))
    assert caught.value.kind == "invalid_event"
    assert caught.value.attempts == 1


async def test_fetch_returns_the_bytes_from_the_events_bucket() -> None:
    store = FakeObjectStore()
    store.objects[("upstream-bucket", "a/p1.jpg")] = b"bytes"
    event = uploaded("p1").model_copy(
        update={"object": uploaded("p1").object.model_copy(update={"bucket": "upstream-bucket",
                                                                    "key": "a/p1.jpg"})}
    )  # fmt: skip
    data = await steps.fetch(store, event, attempts=1, slots=asyncio.Semaphore(1))  # type: ignore[arg-type]
    assert data == b"bytes"


async def test_a_missing_object_is_retried_then_the_photos_fault() -> None:
    store = FakeObjectStore()
    with pytest.raises(steps.PhotoFault) as caught:
        await steps.fetch(store, uploaded("p1"), attempts=2, slots=asyncio.Semaphore(1))  # type: ignore[arg-type]
    assert (caught.value.kind, caught.value.attempts) == ("missing_object", 2)


async def test_s3_down_is_transient_not_the_photos_fault() -> None:
    store = FakeObjectStore()
    store.down = True
    with pytest.raises(steps.TransientError) as caught:
        await steps.fetch(store, uploaded("p1"), attempts=3, slots=asyncio.Semaphore(1))  # type: ignore[arg-type]
    assert caught.value.dependency == "s3"


def test_decode_gives_a_bgr_image_the_engine_input_and_its_time() -> None:
    image, engine_input, ms = steps.decode(
        plain_jpeg(64, 48, (255, 0, 0)), FaceSettings(_env_file=None)
    )
    assert image.pixels.shape == (48, 64, 3) and image.scale == 1.0
    assert image.pixels[0, 0, 2] > 200 and image.pixels[0, 0, 0] < 50  # red, in BGR order
    assert engine_input.pixels is image.pixels and engine_input.sharper is None  # whole already
    assert ms >= 0


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (plain_jpeg()[:200], "corrupt_image"),
        (b"GIF89a" + b"\0" * 10, "corrupt_image"),
        (b"%PDF-1.4", "unsupported_image"),
        (plain_jpeg(200, 200), "image_too_large"),
    ],
)
def test_decode_faults_name_the_kind(data: bytes, kind: str) -> None:
    face = FaceSettings(_env_file=None, max_image_pixels=10_000, max_decoded_pixels=10_000)
    with pytest.raises(steps.PhotoFault) as caught:
        steps.decode(data, face)
    assert caught.value.kind == kind


def test_analyze_batches_every_image_in_one_call() -> None:
    engine = FakeEngine()
    images = [np.full((8, 8, 3), v, np.uint8) for v in (1, 2, 0)]
    results = steps.analyze(engine, images)  # type: ignore[arg-type]
    assert engine.batches == [3]
    assert [len(r.faces) for r in results if not isinstance(r, steps.PhotoFault)] == [1, 1, 0]


def test_a_photo_that_breaks_the_engine_fails_alone() -> None:
    engine = FakeEngine()
    images = [np.full((8, 8, 3), v, np.uint8) for v in (1, 2, 3)]
    engine.fail_on = {int(images[1].sum())}
    results = steps.analyze(engine, images)  # type: ignore[arg-type]
    assert not isinstance(results[0], steps.PhotoFault)
    assert isinstance(results[1], steps.PhotoFault) and results[1].kind == "processing_error"
    assert not isinstance(results[2], steps.PhotoFault)


async def test_store_maps_a_database_outage_to_transient(db: FakePhotoDb) -> None:
    db.down = OSError("connection refused")
    faces = FakeEngine().analyze(np.ones((8, 8, 3), np.uint8))
    with pytest.raises(steps.TransientError) as caught:
        await steps.store_indexed(POOL, uploaded("p1"), faces, "m")
    assert caught.value.dependency == "postgres"


async def test_store_reports_what_the_database_did(db: FakePhotoDb) -> None:
    faces = FakeEngine().analyze(np.ones((8, 8, 3), np.uint8))
    stored = await steps.store_indexed(POOL, uploaded("p1"), faces, "m")
    assert stored.result is WriteResult.WRITTEN
    assert db.rows["p1"].status == "indexed" and db.rows["p1"].model_id == "m"
    db.gate = WriteResult.ERASED
    assert (
        await steps.store_indexed(POOL, uploaded("p2"), faces, "m")
    ).result is WriteResult.ERASED
    assert "p2" not in db.rows


def test_indexed_event_sums_the_stage_times() -> None:
    faces = FakeEngine().analyze(np.ones((8, 8, 3), np.uint8))
    stage_ms = {"download_ms": 4.0, "decode_ms": 3.0, "db_ms": 2.0}
    event = indexed_event(uploaded("p1"), faces, stage_ms, "pack@1")
    assert event.faces_indexed == 1
    assert event.timings.detect_ms == 1.0
    assert event.timings.embed_ms == 2.5  # embed + align
    assert event.timings.total_ms == pytest.approx(4 + 3 + 2 + 1 + 2.5)
    assert event.model_id == "pack@1"


def test_dlq_event_keeps_the_record_to_replay_and_a_valid_key_as_photo_id() -> None:
    fault = steps.PhotoFault("invalid_event", "x" * 5000)
    failed = dlq_event(record(b"garbage", key=b"p-7"), None, fault)
    assert failed.photo_id == "p-7" and failed.session_id is None
    assert len(failed.error) == 2000
    assert failed.source.value == "garbage" and failed.source.offset == 7
    assert photo_id_from_key(b"../etc") is None
    assert photo_id_from_key(None) is None


def test_raw_records_take_one_record_or_a_batch() -> None:
    class Consumed:
        topic, partition, offset, key, value, headers = "t", 1, 5, b"k", None, [("h", b"v")]

    one = raw_records(Consumed())
    batch = raw_records([Consumed(), Consumed()])
    assert one == [RawRecord("t", 1, 5, b"k", b"", {"h": b"v"})]
    assert len(batch) == 2 and raw_records((Consumed(),)) == one
