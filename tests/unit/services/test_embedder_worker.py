"""EmbedderWorker.process_batch and the Kafka handler around it, without servers: the batch's
outcome for each kind of record, and (with FastStream's TestKafkaBroker) what the handler
publishes."""

from __future__ import annotations

import json
import threading

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from libs.common.db.photos import WriteResult
from libs.common.events import PhotoFailed, PhotoIndexed
from libs.common.imaging import decode_reduced
from libs.common.log import REQUEST_ID_HEADER
from libs.common.settings import EmbedderSettings, Settings
from services.embedder.records import RawRecord
from services.embedder.steps import TransientError
from services.embedder.subscriber import register_embedder
from services.embedder.worker import EmbedderWorker
from tests.support.fake_db import FakePhotoDb
from tests.support.fakes import FakeEngine, FakeObjectStore, fake_runtime, plain_jpeg, uploaded


def stored_record(store: FakeObjectStore, photo_id: str, data: bytes, offset: int) -> RawRecord:
    event = uploaded(photo_id)
    store.objects[(event.object.bucket, event.object.key)] = data
    return RawRecord(
        "uploaded", 0, offset, photo_id.encode(), event.model_dump_json().encode(),
        {REQUEST_ID_HEADER: f"req-{photo_id}".encode()},
    )  # fmt: skip


async def test_a_mixed_batch_indexes_the_good_and_sends_each_poison_photo_to_the_dlq(
    db: FakePhotoDb, store: FakeObjectStore, engine: FakeEngine
) -> None:
    settings = Settings(embedder=EmbedderSettings(missing_object_attempts=1))
    runtime = fake_runtime(store=store, engine=engine, settings=settings)
    records = [
        stored_record(store, "good", plain_jpeg(), 0),
        stored_record(store, "faceless", plain_jpeg(colour=(0, 0, 0)), 1),
        stored_record(store, "broken", plain_jpeg()[:100], 2),
        RawRecord("uploaded", 0, 3, b"junk", b"{not json", {}),
    ]
    missing = uploaded("missing")  # its object was never stored
    records.append(RawRecord("uploaded", 0, 4, b"missing", missing.model_dump_json().encode()))

    outcome = await EmbedderWorker(runtime).process_batch(records)

    assert [(e.photo_id, e.faces_indexed, r) for e, r in outcome.indexed] == [
        ("good", 1, "req-good"),
        ("faceless", 0, "req-faceless"),
    ]
    assert sorted((f.photo_id, f.error_kind) for f, _ in outcome.failed) == [
        ("broken", "corrupt_image"),
        ("junk", "invalid_event"),
        ("missing", "missing_object"),
    ]
    assert sum(engine.batches) == 2  # each decodable photo analysed once
    assert db.rows["good"].status == "indexed" and db.rows["faceless"].faces_count == 0
    assert db.rows["broken"].status == "failed" and "corrupt_image" in (
        db.rows["broken"].error or ""
    )
    assert "junk" not in db.rows  # an invalid event names no photo to mark


async def test_erased_or_superseded_photos_are_skipped_not_published(
    db: FakePhotoDb, store: FakeObjectStore
) -> None:
    db.gate = WriteResult.ERASED
    outcome = await EmbedderWorker(fake_runtime(store=store)).process_batch(
        [
            stored_record(store, "p1", plain_jpeg(), 0),
            stored_record(store, "p2", b"\xff\xd8\xff", 1),
        ]
    )
    assert (outcome.indexed, outcome.failed, outcome.skipped) == ([], [], 2)


async def test_a_photo_id_of_another_session_goes_to_the_dlq_as_a_conflict(
    db: FakePhotoDb, store: FakeObjectStore
) -> None:
    db.gate = WriteResult.CONFLICT
    outcome = await EmbedderWorker(fake_runtime(store=store)).process_batch(
        [stored_record(store, "p1", plain_jpeg(), 0)]
    )
    assert [(f.photo_id, f.error_kind) for f, _ in outcome.failed] == [("p1", "photo_conflict")]


@pytest.mark.parametrize("down", ["s3", "postgres"])
async def test_a_dependency_down_fails_the_whole_batch_as_transient(
    db: FakePhotoDb, store: FakeObjectStore, down: str
) -> None:
    records = [stored_record(store, "p1", plain_jpeg(), 0)]
    if down == "s3":
        store.down = True
    else:
        db.down = ConnectionRefusedError("db down")
    with pytest.raises(TransientError) as caught:
        await EmbedderWorker(fake_runtime(store=store)).process_batch(records)
    assert caught.value.dependency == down


async def test_the_handler_publishes_indexed_and_dlq_events(
    db: FakePhotoDb, store: FakeObjectStore
) -> None:
    broker = KafkaBroker("127.0.0.1:1")
    runtime = fake_runtime(store=store, broker=broker)
    kafka = runtime.settings.kafka
    await register_embedder(runtime)
    indexed: list[PhotoIndexed] = []
    failed: list[PhotoFailed] = []

    @broker.subscriber(kafka.topic_indexed)
    async def on_indexed(event: PhotoIndexed) -> None:
        indexed.append(event)

    @broker.subscriber(kafka.topic_dlq)
    async def on_dlq(event: PhotoFailed) -> None:
        failed.append(event)

    good = uploaded("p1")
    store.objects[(good.object.bucket, good.object.key)] = plain_jpeg()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            good.model_dump(mode="json"), topic=kafka.topic_uploaded, key=b"p1",
            headers={REQUEST_ID_HEADER: "req-1"},
        )  # fmt: skip
        await test_broker.publish(b"{oops", topic=kafka.topic_uploaded, key=b"p2")

    assert [(e.photo_id, e.session_id, e.faces_indexed) for e in indexed] == [("p1", "s1", 1)]
    assert [(f.photo_id, f.error_kind, f.source.value) for f in failed] == [
        ("p2", "invalid_event", "{oops")
    ]
    assert json.loads(failed[0].source.model_dump_json())["topic"] == kafka.topic_uploaded
    assert db.rows["p1"].status == "indexed"


async def test_a_batch_is_shared_between_the_inference_workers(
    db: FakePhotoDb, store: FakeObjectStore, engine: FakeEngine
) -> None:
    runtime = fake_runtime(store=store, engine=engine)
    runtime.inference_workers = 2
    records = [
        stored_record(store, f"p{i}", plain_jpeg(64 + 8 * i, 48, (20 * i, 100, 50)), i)
        for i in range(5)
    ]
    outcome = await EmbedderWorker(runtime).process_batch(records)
    assert sum(engine.batches) == 5  # every photo analysed once (lanes.py decides the calls)
    assert [e.photo_id for e, _ in outcome.indexed] == [f"p{i}" for i in range(5)]  # in order
    assert all(db.rows[f"p{i}"].status == "indexed" for i in range(5))
    runtime.close_pools()


async def test_faces_are_stored_in_the_photos_own_pixels(
    db: FakePhotoDb, store: FakeObjectStore, engine: FakeEngine
) -> None:
    """A 6000 px JPEG decodes at half size for the 2560 px pass; the fake engine finds its face
    at (10, 10, 60, 60) of what it is given, which is (20, 20, 120, 120) of the photo."""
    outcome = await EmbedderWorker(fake_runtime(store=store, engine=engine)).process_batch(
        [stored_record(store, "big", plain_jpeg(6000, 4000), 0)]
    )
    assert [e.faces_indexed for e, _ in outcome.indexed] == [1]
    stored = db.faces["big"]
    assert stored.faces[0].bbox == (20, 20, 120, 120)
    assert (stored.width, stored.height) == (6000, 4000)


async def test_the_inference_workers_run_at_the_same_time(
    db: FakePhotoDb, store: FakeObjectStore
) -> None:
    """Each worker's engine call waits at a barrier for the other: the batch only completes if
    both run at once (on threads of their own, not one after the other)."""

    class MeetingEngine(FakeEngine):
        def __init__(self) -> None:
            super().__init__()
            self.barrier = threading.Barrier(2, timeout=10)
            self.threads: set[str] = set()

        def analyze_batch(self, images):  # type: ignore[no-untyped-def]
            thread = threading.current_thread().name
            if thread not in self.threads:  # each worker's first call meets the other's
                self.threads.add(thread)
                self.barrier.wait()
            return super().analyze_batch(images)

    engine = MeetingEngine()
    runtime = fake_runtime(store=store, engine=engine)
    runtime.inference_workers = 2
    records = [stored_record(store, f"p{i}", plain_jpeg(), i) for i in range(4)]
    outcome = await EmbedderWorker(runtime).process_batch(records)
    assert len(outcome.indexed) == 4
    assert len(engine.threads) == 2 and all("inference" in t for t in engine.threads)
    runtime.close_pools()


def _renditions(store: FakeObjectStore, photo_id: str) -> list[str]:
    return [k for _, k in store.objects if f"/photos/{photo_id}/renditions/" in k]


async def test_an_indexed_photo_names_its_thumbnail_and_preview_which_are_in_s3(
    db: FakePhotoDb, store: FakeObjectStore
) -> None:
    records = [stored_record(store, "p1", plain_jpeg(2000, 1500), 0)]
    outcome = await EmbedderWorker(fake_runtime(store=store)).process_batch(records)
    row = db.rows["p1"]
    assert row.thumbnail_key and row.preview_key
    assert sorted(_renditions(store, "p1")) == sorted([row.thumbnail_key, row.preview_key])
    assert row.thumbnail_key.startswith("sessions/s1/photos/p1/renditions/")
    assert row.thumbnail_key.endswith("-thumbnail.jpg") and row.preview_key.endswith("-preview.jpg")
    preview = store.objects[(store.bucket, row.preview_key)]
    assert preview[:3] == b"\xff\xd8\xff" and len(preview) < len(plain_jpeg(2000, 1500)) * 4
    assert outcome.indexed[0][0].timings.render_ms > 0


async def test_new_bytes_replace_the_renditions_and_the_old_ones_go(
    db: FakePhotoDb, store: FakeObjectStore
) -> None:
    worker = EmbedderWorker(fake_runtime(store=store))
    await worker.process_batch([stored_record(store, "p1", plain_jpeg(800, 600), 0)])
    first = db.rows["p1"]
    await worker.process_batch([stored_record(store, "p1", plain_jpeg(640, 480), 1)])
    second = db.rows["p1"]
    assert second.thumbnail_key != first.thumbnail_key
    assert sorted(_renditions(store, "p1")) == sorted([second.thumbnail_key, second.preview_key])


@pytest.mark.parametrize("gate", [WriteResult.ERASED, WriteResult.SUPERSEDED])
async def test_a_skipped_write_deletes_the_renditions_it_made(
    db: FakePhotoDb, store: FakeObjectStore, gate: WriteResult
) -> None:
    """Erased (or superseded) while the batch ran: the copies put in S3 for it go again, so
    an erasure that raced the embedder leaves no thumbnail behind."""
    db.gate = gate
    records = [stored_record(store, "p1", plain_jpeg(800, 600), 0)]
    outcome = await EmbedderWorker(fake_runtime(store=store)).process_batch(records)
    assert outcome.skipped == 1 and _renditions(store, "p1") == []


async def test_a_photo_the_engine_fails_on_keeps_no_renditions(
    db: FakePhotoDb, store: FakeObjectStore, engine: FakeEngine
) -> None:
    data = plain_jpeg(800, 600)
    worker = EmbedderWorker(fake_runtime(store=store, engine=engine))
    await worker.process_batch([stored_record(store, "p1", plain_jpeg(640, 480), 0)])
    assert len(_renditions(store, "p1")) == 2
    face = Settings().face
    engine.fail_on = {int(decode_reduced(data, **face.decode_limits).pixels.sum())}
    outcome = await worker.process_batch([stored_record(store, "p1", data, 1)])
    assert [f.error_kind for f, _ in outcome.failed] == ["processing_error"]
    assert db.rows["p1"].status == "failed" and _renditions(store, "p1") == []
