"""Ingest without servers: the checks of an upload, accept_photo (store, queue, publish) and
erasure, on fakes (tests/support/fakes.py) and FastStream's TestKafkaBroker."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker, TestKafkaBroker
from litestar.datastructures import UploadFile

from libs.common.events import PhotoUploaded
from libs.common.http.problems import ApiError
from libs.common.settings import FaceSettings
from libs.common.storage import photo_object_key
from services.ingest.accept import Upload, accept_photo
from services.ingest.erasure import erase_photo, erase_session
from services.ingest.schemas import IndexForm
from services.ingest.validation import read_upload
from tests.support.fake_db import FakePhotoDb
from tests.support.fakes import FakeObjectStore, fake_runtime, plain_jpeg

FACE = FaceSettings(_env_file=None, max_image_bytes=50_000, max_image_pixels=1_000_000)


def form(photo_id: str, session_id: str, data: bytes) -> IndexForm:
    return IndexForm(photo_id, session_id, UploadFile("application/octet-stream", "f", data))


async def test_read_upload_checks_ids_then_the_image() -> None:
    upload = await read_upload(form("p1", "s1", plain_jpeg()), FACE, "req-1")
    assert (upload.photo_id, upload.content_type, upload.request_id) == (
        "p1",
        "image/jpeg",
        "req-1",
    )


@pytest.mark.parametrize(
    ("photo_id", "data", "status", "slug"),
    [
        ("../p", plain_jpeg(), 422, "invalid-id"),
        ("p1", b"%PDF-1.7 not an image", 415, "unsupported-image"),
        ("p1", b"\0" * 60_000, 413, "image-too-large"),
        ("p1", plain_jpeg(2000, 1000), 413, "image-too-large"),
        ("p1", plain_jpeg()[:4] + b"\0" * 30, 422, "corrupt-image"),
    ],
)
async def test_bad_uploads_get_their_problem(
    photo_id: str, data: bytes, status: int, slug: str
) -> None:
    with pytest.raises(ApiError) as caught:
        await read_upload(form(photo_id, "s1", data), FACE, "")
    assert (caught.value.status_code, caught.value.slug) == (status, slug)


class Published:
    """What reached the uploaded topic through a TestKafkaBroker."""

    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self.events: list[PhotoUploaded] = []

        @broker.subscriber(topic)
        async def on_uploaded(event: PhotoUploaded) -> None:
            self.events.append(event)


def upload(data: bytes, photo_id: str = "p1", session_id: str = "s1") -> Upload:
    return Upload(photo_id, session_id, data, "image/jpeg", "req-1")


async def test_accept_stores_queues_and_publishes(db: FakePhotoDb, store: FakeObjectStore) -> None:
    broker = KafkaBroker("127.0.0.1:1")
    runtime = fake_runtime(store=store, broker=broker)
    published = Published(broker, runtime.settings.kafka.topic_uploaded)
    data = plain_jpeg()
    async with TestKafkaBroker(broker):
        accepted = await accept_photo(runtime, upload(data))
        again = await accept_photo(runtime, upload(data))

    key = photo_object_key("s1", "p1", hashlib.sha256(data).hexdigest())
    assert (accepted.status, accepted.duplicate) == ("queued", False)
    assert (again.status, again.duplicate) == ("queued", True)  # same bytes: a no-op
    assert store.keys() == [key]
    assert db.rows["p1"].status == "queued" and db.rows["p1"].object_key == key
    assert len(published.events) == 1
    event = published.events[0]
    assert (event.photo_id, event.object.key, event.size_bytes) == ("p1", key, len(data))
    assert event.uploaded_at == db.rows["p1"].updated_at


async def test_new_bytes_replace_the_old_object(db: FakePhotoDb, store: FakeObjectStore) -> None:
    broker = KafkaBroker("127.0.0.1:1")
    runtime = fake_runtime(store=store, broker=broker)
    published = Published(broker, runtime.settings.kafka.topic_uploaded)
    first, second = plain_jpeg(colour=(1, 2, 3)), plain_jpeg(colour=(200, 2, 3))
    async with TestKafkaBroker(broker):
        await accept_photo(runtime, upload(first))
        await accept_photo(runtime, upload(second))
    assert store.keys() == [photo_object_key("s1", "p1", hashlib.sha256(second).hexdigest())]
    assert len(published.events) == 2


async def test_a_photo_id_of_another_session_is_refused_before_storing(
    db: FakePhotoDb, store: FakeObjectStore
) -> None:
    broker = KafkaBroker("127.0.0.1:1")
    runtime = fake_runtime(store=store, broker=broker)
    async with TestKafkaBroker(broker):
        await accept_photo(runtime, upload(plain_jpeg()))
        with pytest.raises(ApiError) as caught:
            await accept_photo(runtime, upload(plain_jpeg(colour=(9, 9, 9)), session_id="s2"))
    assert (caught.value.status_code, caught.value.slug) == (409, "photo-conflict")
    assert len(store.keys()) == 1


async def test_a_failed_publish_deletes_the_new_object(
    db: FakePhotoDb, store: FakeObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = KafkaBroker("127.0.0.1:1")
    runtime = fake_runtime(store=store, broker=broker)

    async def broker_down(*args: Any, **kwargs: Any) -> None:
        raise KafkaConnectionError("broker down")

    async with TestKafkaBroker(broker):
        monkeypatch.setattr(broker, "publish", broker_down)
        with pytest.raises(KafkaConnectionError):
            await accept_photo(runtime, upload(plain_jpeg()))
    assert store.keys() == []


async def test_s3_down_stores_nothing(db: FakePhotoDb, store: FakeObjectStore) -> None:
    store.down = True
    broker = KafkaBroker("127.0.0.1:1")
    runtime = fake_runtime(store=store, broker=broker)
    published = Published(broker, runtime.settings.kafka.topic_uploaded)
    async with TestKafkaBroker(broker):
        with pytest.raises(ConnectionError):
            await accept_photo(runtime, upload(plain_jpeg()))
    assert published.events == [] and "p1" not in db.rows


async def test_erasure_removes_rows_and_every_object_under_the_prefix(
    db: FakePhotoDb, store: FakeObjectStore
) -> None:
    runtime = fake_runtime(store=store)
    for photo in ("p1", "p2"):
        key = photo_object_key("s1", photo, "ab" * 32)
        store.objects[(store.bucket, key)] = b"x"
        await db.record_queued(
            None, photo_id=photo, session_id="s1", object_key=key, content_sha256="ab" * 32
        )
    store.objects[(store.bucket, "sessions/s2/photos/p9/cd")] = b"other session"

    erased = await erase_photo(runtime, "p1")
    assert erased is not None and (erased.photos_erased, erased.objects_deleted) == (1, 1)
    again = await erase_photo(runtime, "p1")  # the tombstone answers; nothing left to delete
    assert again is not None and (again.photos_erased, again.objects_deleted) == (0, 0)
    assert await erase_photo(runtime, "never-seen") is None

    session = await erase_session(runtime, "s1")
    assert (session.photos_erased, session.objects_deleted) == (1, 1)
    assert store.keys() == ["sessions/s2/photos/p9/cd"]
