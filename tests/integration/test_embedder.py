"""The embedder consumer group on the real broker: upstream publishing, partition sharing,
replays without duplicates, poison messages to the DLQ, erasure surviving a replay."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest
from botocore.session import get_session

from libs.common.events import ObjectRef, PhotoUploaded
from libs.common.settings import Settings
from libs.common.storage import client_kwargs
from tests.support.data import T1, TOM_HANKS, jpeg_bytes
from tests.support.kafka import Topics, partitions_held, publish, read_json
from tests.support.processes import API_KEY, ServerProcess, facepass_serve
from tests.support.reliability import wait_for


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _put(stack: Settings, key: str, data: bytes) -> ObjectRef:
    client = get_session().create_client("s3", **client_kwargs(stack.s3))
    try:
        client.put_object(Bucket=stack.s3.bucket, Key=key, Body=data)
    finally:
        client.close()
    return ObjectRef(bucket=stack.s3.bucket, key=key)


def _publish_event(stack: Settings, topic: str, event: PhotoUploaded) -> None:
    asyncio.run(
        publish(
            stack.kafka.bootstrap, topic, event.model_dump_json().encode(), event.photo_id.encode()
        )
    )


def _indexed(stack: Settings, topic: str, photo_ids: set[str], timeout: float = 90) -> list[dict]:
    def done(values: list[dict]) -> bool:
        return photo_ids <= {v.get("photo_id") for v in values}

    return asyncio.run(read_json(stack.kafka.bootstrap, topic, until=done, timeout_s=timeout))


def _faces(stack: Settings, photo_ids: list[str]) -> dict[str, int]:
    with psycopg.connect(stack.postgres.dsn()) as conn:
        rows = conn.execute(
            "SELECT photo_id, count(*) FROM face_embeddings WHERE photo_id = ANY(%s) GROUP BY 1",
            (photo_ids,),
        ).fetchall()
    return dict(rows)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path


def test_upstream_publishes_an_s3_reference_and_the_photo_is_indexed(
    server: ServerProcess, stack: Settings
) -> None:
    """The public contract: no HTTP, just an object in S3 and an event on the topic."""
    photo, session = _uid("up"), _uid("sess")
    ref = _put(stack, f"upstream/{photo}.jpg", T1.read_bytes())
    _publish_event(
        stack,
        stack.kafka.topic_uploaded,
        PhotoUploaded(photo_id=photo, session_id=session, object=ref, source="pixora"),
    )
    events = _indexed(stack, stack.kafka.topic_indexed, {photo})
    event = next(e for e in events if e["photo_id"] == photo)
    assert event["faces_indexed"] == 6
    assert event["session_id"] == session
    assert event["timings"]["total_ms"] > 0
    assert _faces(stack, [photo]) == {photo: 6}
    with server.client() as client:
        status = client.get(f"/api/v2/photos/{photo}", headers={"X-API-Key": API_KEY}).json()
    assert status["status"] == "indexed"


def test_two_embedders_share_the_partitions_and_index_each_photo_once(
    stack: Settings, logs: Path
) -> None:
    topics = Topics(stack, partitions=4)
    photos = [_uid("pair") for _ in range(12)]
    refs = {p: _put(stack, f"upstream/{p}.jpg", jpeg_bytes(TOM_HANKS)) for p in photos}
    with ExitStack() as running:
        embedders = [
            running.enter_context(facepass_serve(stack, logs, "embedder", **topics.env()))
            for _ in range(2)
        ]
        # Healthy is not joined: wait until the coordinator has shared the partitions (the
        # embedded broker takes up to a session timeout per rebalance on a busy machine).
        wait_for(
            lambda: all(partitions_held(e.log()) > 0 for e in embedders),
            timeout=120,
            what="both embedders holding partitions",
            interval=1,
        )
        for photo in photos:
            _publish_event(
                stack,
                topics.kafka.topic_uploaded,
                PhotoUploaded(photo_id=photo, session_id="pairs", object=refs[photo]),
            )
        events = _indexed(stack, topics.kafka.topic_indexed, set(photos))
        per_process = [e.log().count('"photo indexed"') for e in embedders]
    counts = Counter(e["photo_id"] for e in events)
    assert all(counts[p] == 1 for p in photos), counts
    assert sum(per_process) == len(photos)
    assert all(n > 0 for n in per_process), f"one embedder got no partition: {per_process}"
    assert _faces(stack, photos) == dict.fromkeys(photos, 1)

    # Replay the whole topic with a new consumer group: same faces, not one more.
    with facepass_serve(stack, logs, "embedder", **topics.env(group=_uid("replay"))):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            replayed = _indexed(stack, topics.kafka.topic_indexed, set(photos), timeout=5)
            if sum(Counter(e["photo_id"] for e in replayed).values()) >= 2 * len(photos):
                break
    assert _faces(stack, photos) == dict.fromkeys(photos, 1)


def test_poison_messages_go_to_the_dlq_and_good_photos_still_index(
    stack: Settings, logs: Path
) -> None:
    topics = Topics(stack, partitions=1)
    session = _uid("poison")
    good = _uid("good")
    missing = PhotoUploaded(
        photo_id=_uid("missing"),
        session_id=session,
        object=ObjectRef(bucket=stack.s3.bucket, key="no/such/object.jpg"),
    )
    corrupt_ref = _put(stack, f"upstream/{session}/corrupt.jpg", b"\xff\xd8\xff\xe0garbage" * 10)
    corrupt = PhotoUploaded(photo_id=_uid("corrupt"), session_id=session, object=corrupt_ref)
    text_ref = _put(stack, f"upstream/{session}/text.jpg", b"hello, I am not a photo")
    text = PhotoUploaded(photo_id=_uid("text"), session_id=session, object=text_ref)
    topic = topics.kafka.topic_uploaded
    asyncio.run(publish(stack.kafka.bootstrap, topic, b"{not json", b"k1"))
    asyncio.run(publish(stack.kafka.bootstrap, topic, json.dumps({"photo_id": "x"}).encode()))
    for event in (missing, corrupt, text):
        _publish_event(stack, topic, event)
    good_ref = _put(stack, f"upstream/{session}/good.jpg", T1.read_bytes())
    _publish_event(stack, topic, PhotoUploaded(photo_id=good, session_id=session, object=good_ref))
    with facepass_serve(
        stack, logs, "embedder", EMBEDDER_MISSING_OBJECT_ATTEMPTS="2", **topics.env()
    ):
        _indexed(stack, topics.kafka.topic_indexed, {good})
        dlq = asyncio.run(
            read_json(stack.kafka.bootstrap, topics.kafka.topic_dlq, until=lambda v: len(v) >= 5)
        )
    kinds = Counter(d["error_kind"] for d in dlq)
    assert kinds == {
        "invalid_event": 2,
        "missing_object": 1,
        "corrupt_image": 1,
        "unsupported_image": 1,
    }
    by_photo = {d["photo_id"]: d for d in dlq if d["photo_id"]}
    assert by_photo[missing.photo_id]["attempts"] == 2
    assert all(d["source"]["topic"] == topic for d in dlq)
    assert any(d["source"]["value"] == "{not json" for d in dlq)
    assert _faces(stack, [good]) == {good: 6}
    with psycopg.connect(stack.postgres.dsn()) as conn:
        status = conn.execute(
            "SELECT status, error FROM photos WHERE photo_id = %s", (corrupt.photo_id,)
        ).fetchone()
    assert status[0] == "failed" and status[1].startswith("corrupt_image")


def test_an_erased_session_is_not_resurrected_by_a_replay(
    server: ServerProcess, stack: Settings
) -> None:
    photo, session = _uid("erased"), _uid("sess")
    ref = _put(stack, f"upstream-keep/{photo}.jpg", T1.read_bytes())  # not under FacePass' prefix
    event = PhotoUploaded(photo_id=photo, session_id=session, object=ref)
    _publish_event(stack, stack.kafka.topic_uploaded, event)
    _indexed(stack, stack.kafka.topic_indexed, {photo})
    assert _faces(stack, [photo]) == {photo: 6}
    with server.client() as client:
        assert (
            client.delete(f"/api/v2/sessions/{session}", headers={"X-API-Key": API_KEY}).status_code
            == 200
        )
    skipped_before = _metric(server, "facepass_photos_skipped_total")
    _publish_event(stack, stack.kafka.topic_uploaded, event)  # the old event, replayed
    deadline = time.monotonic() + 120
    while _metric(server, "facepass_photos_skipped_total") <= skipped_before:
        assert time.monotonic() < deadline, "the replayed event was never consumed"
        time.sleep(0.3)
    assert _faces(stack, [photo]) == {}
    # A new upload after the erasure is a new photo and is indexed.
    fresh = PhotoUploaded(photo_id=photo, session_id=session, object=ref)
    _publish_event(stack, stack.kafka.topic_uploaded, fresh)
    deadline = time.monotonic() + 60
    while _faces(stack, [photo]) != {photo: 6}:
        assert time.monotonic() < deadline
        time.sleep(0.3)


def _metric(server: ServerProcess, name: str) -> float:
    with server.client() as client:
        text = client.get("/api/v2/metrics").text
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    ]
    return sum(values)


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield


def test_an_older_upload_never_overwrites_newer_bytes(
    server: ServerProcess, stack: Settings
) -> None:
    """A replayed (or racing) event of replaced bytes is skipped; failed new bytes leave no
    faces of the old ones behind."""
    import hashlib
    from datetime import UTC, datetime

    from tests.support.api import index_and_wait

    photo, session = _uid("newer"), _uid("sess")
    before = datetime.now(UTC)
    index_and_wait(server, session, {photo: T1.read_bytes()})
    old_ref = _put(stack, f"upstream-keep/{photo}-old.jpg", T1.read_bytes())
    old = PhotoUploaded(
        photo_id=photo,
        session_id=session,
        object=old_ref,
        content_sha256=hashlib.sha256(T1.read_bytes()).hexdigest(),
        uploaded_at=before,
    )
    tom = jpeg_bytes(TOM_HANKS)
    with server.client() as client:
        client.post(
            "/api/v2/index",
            headers={"X-API-Key": API_KEY},
            data={"photo_id": photo, "session_id": session},
            files={"file": ("p.jpg", tom, "image/jpeg")},
        )
    deadline = time.monotonic() + 60
    while _faces(stack, [photo]) != {photo: 1}:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    skipped = _metric(server, 'facepass_photos_skipped_total{reason="superseded"}')
    _publish_event(stack, stack.kafka.topic_uploaded, old)  # the old upload, replayed
    while _metric(server, 'facepass_photos_skipped_total{reason="superseded"}') <= skipped:
        assert time.monotonic() < deadline + 60, "the replayed event was never consumed"
        time.sleep(0.3)
    assert _faces(stack, [photo]) == {photo: 1}

    # Newer bytes that cannot be indexed: status failed, and the old faces are gone.
    broken = _put(stack, f"upstream-keep/{photo}-broken.jpg", b"\xff\xd8\xff\xe0broken" * 20)
    _publish_event(
        stack,
        stack.kafka.topic_uploaded,
        PhotoUploaded(photo_id=photo, session_id=session, object=broken, content_sha256="0" * 64),
    )
    while True:
        with psycopg.connect(stack.postgres.dsn()) as conn:
            status = conn.execute(
                "SELECT status FROM photos WHERE photo_id = %s", (photo,)
            ).fetchone()[0]
        if status == "failed":
            break
        assert time.monotonic() < deadline + 120
        time.sleep(0.3)
    assert _faces(stack, [photo]) == {}
