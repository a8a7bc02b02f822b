"""Helpers of the reliability suite: generated photos, private topics, stack faults, scans."""

from __future__ import annotations

import asyncio
import io
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from botocore.session import get_session
from PIL import Image

from libs.common.events import ObjectRef, PhotoUploaded
from libs.common.kafka import log_end_offsets
from libs.common.settings import Settings
from libs.common.storage import client_kwargs
from libs.stack.process import wait_until
from libs.stack.stack import EmbeddedStack
from tests.support.data import T1, TOM_HANKS
from tests.support.kafka import Topics  # noqa: F401 - re-exported for the suite
from tests.support.processes import API_KEY, ServerProcess

KEY = {"X-API-Key": API_KEY}

#: Faces of t1.jpg (x1, y1, x2, y2), as the default pack finds them, each with a margin.
T1_FACES = [
    (463, 266, 573, 415),
    (56, 261, 169, 398),
    (906, 60, 1011, 206),
    (745, 342, 847, 480),
    (270, 145, 372, 270),
    (1130, 273, 1227, 401),
]


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- images ---------------------------------------------------------------------------------


def encode(im: Image.Image, fmt: str = "JPEG", **params: Any) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG" and im.mode not in ("RGB", "L", "CMYK"):
        im = im.convert("RGB")
    im.save(out, format=fmt, **params)
    return out.getvalue()


def _face_tiles() -> list[Image.Image]:
    """Every face the packaged samples hold, cropped with a margin: Tom Hanks and t1's six."""
    tiles = [Image.open(TOM_HANKS).convert("RGB")]
    with Image.open(T1) as t1:
        group = t1.convert("RGB")
    for x1, y1, x2, y2 in T1_FACES:
        mx, my = (x2 - x1) // 3, (y2 - y1) // 4
        tiles.append(group.crop((x1 - mx, y1 - my, x2 + mx, y2 + my)))
    return tiles


@dataclass(frozen=True)
class SmallPhoto:
    photo_id: str
    data: bytes


def small_photos(count: int, prefix: str, seed: int = 9) -> list[SmallPhoto]:
    """`count` small JPEGs, each one or two sample faces rescaled on a plain canvas, and each
    with a unique stamp of coloured squares far from the faces (so no two share bytes)."""
    rng = random.Random(seed)
    tiles = _face_tiles()
    photos = []
    for n in range(count):
        faces = rng.choice((1, 1, 2))
        side = rng.randrange(110, 150)
        canvas = Image.new(
            "RGB", (side * faces + 40, side + 40), tuple(rng.randrange(90, 230) for _ in "rgb")
        )
        for i in range(faces):
            tile = rng.choice(tiles).resize((side, side))
            canvas.paste(tile, (20 + i * side, 10))
        for bit in range(12):  # the stamp: photo number in binary along the bottom edge
            colour = (0, 0, 0) if (n >> bit) & 1 else (255, 255, 255)
            canvas.paste(colour, (4 + bit * 4, canvas.height - 6, 7 + bit * 4, canvas.height - 3))
        photos.append(SmallPhoto(f"{prefix}-{n:04d}", encode(canvas, quality=90)))
    return photos


def expected_faces(photos: list[SmallPhoto], settings: Settings) -> dict[str, int]:
    """The clean run: faces per photo as the face engine, run here once, finds them."""
    from libs.common.face.engine import FaceEngine
    from libs.common.imaging import decode_image

    engine = FaceEngine.from_settings(settings.face)
    engine.load()
    face = settings.face
    counts = {}
    for start in range(0, len(photos), 16):  # batched, as the embedder does
        chunk = photos[start : start + 16]
        decoded = [
            decode_image(p.data, max_bytes=face.max_image_bytes, max_pixels=face.max_image_pixels)
            for p in chunk
        ]
        for photo, result in zip(chunk, engine.analyze_batch(decoded), strict=True):
            counts[photo.photo_id] = len(result.faces)
    return counts


# --- Kafka ----------------------------------------------------------------------------------


async def publish_many(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key) for value, key in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def upstream_photo(
    settings: Settings, session_id: str, photo_id: str, data: bytes
) -> list[tuple[bytes, bytes | None]]:
    """A photo as an upstream system sends it: its bytes in a key of its own (which erasure
    leaves alone, so its event can be replayed after one) and its `photos.uploaded` record,
    to publish (with publish_many) once or more."""
    key = f"upstream/{photo_id}.jpg"
    put_object(settings, key, data)
    event = PhotoUploaded(
        photo_id=photo_id,
        session_id=session_id,
        object=ObjectRef(bucket=settings.s3.bucket, key=key),
        uploaded_at=datetime.now(UTC),
    )
    return [(event.model_dump_json().encode(), photo_id.encode())]


async def read_topic(bootstrap: str, topic: str) -> list[bytes]:
    """Every record value of `topic`, from offset 0 to the end offsets of now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await log_end_offsets(bootstrap, tps)
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batch.items():
                values.extend(r.value or b"" for r in records)
                values.extend(r.key or b"" for r in records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return values
    finally:
        await consumer.stop()


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


async def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """Sum of the group's committed offsets over the partitions of `topic`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
        return sum(meta.offset for meta in offsets.values() if meta.offset >= 0)
    finally:
        await admin.close()


def read_json_values(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    import json

    out = []
    for value in asyncio.run(read_topic(bootstrap, topic)):
        try:
            decoded = json.loads(value)
        except ValueError:
            continue
        if isinstance(decoded, dict):
            out.append(decoded)
    return out


# --- S3 and PostgreSQL ----------------------------------------------------------------------


def s3_client(settings: Settings) -> Any:
    return get_session().create_client("s3", **client_kwargs(settings.s3))


def put_object(settings: Settings, key: str, data: bytes, bucket: str | None = None) -> None:
    client = s3_client(settings)
    try:
        client.put_object(Bucket=bucket or settings.s3.bucket, Key=key, Body=data)
    finally:
        client.close()


def list_objects(settings: Settings, prefix: str = "", bucket: str | None = None) -> list[str]:
    client = s3_client(settings)
    try:
        keys: list[str] = []
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket or settings.s3.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys
    finally:
        client.close()


def db(settings: Settings) -> psycopg.Connection[Any]:
    return psycopg.connect(settings.postgres.dsn(), autocommit=True)


def faces_per_photo(settings: Settings, photo_ids: list[str]) -> dict[str, int]:
    with db(settings) as conn:
        rows = conn.execute(
            "SELECT photo_id, count(*) FROM face_embeddings WHERE photo_id = ANY(%s) GROUP BY 1",
            (photo_ids,),
        ).fetchall()
    return {photo: count for photo, count in rows}


def photo_rows(settings: Settings, photo_ids: list[str]) -> dict[str, tuple[str, int, str | None]]:
    """photo_id → (status, faces_count, error)."""
    with db(settings) as conn:
        rows = conn.execute(
            "SELECT photo_id, status, faces_count, error FROM photos WHERE photo_id = ANY(%s)",
            (photo_ids,),
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def wait_for(
    check: Any,
    timeout: float,
    what: str,
    interval: float = 0.5,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll `check()` until it returns something truthy; fail naming `what`, with `explain()`
    (e.g. a server's log tail) appended so that a failure in CI says why."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    message = f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})"
    if explain is not None:
        message += "\n" + explain()
    raise AssertionError(message)


# --- HTTP -----------------------------------------------------------------------------------


def index(
    client: httpx.Client,
    photo_id: str,
    session_id: str,
    data: bytes,
    headers: dict[str, str] | None = None,
    filename: str = "photo.jpg",
) -> httpx.Response:
    return client.post(
        "/api/v2/index",
        headers=KEY if headers is None else headers,
        data={"photo_id": photo_id, "session_id": session_id},
        files={"file": (filename, data, "application/octet-stream")},
    )


def search(
    client: httpx.Client, session_id: str, selfie: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.post(
        "/api/v2/search",
        headers=headers or {},
        data={"session_id": session_id},
        files={"file": ("selfie.jpg", selfie, "application/octet-stream")},
    )


def wait_indexed(server: ServerProcess, photo_ids: list[str], timeout: float = 120) -> None:
    pending = set(photo_ids)
    deadline = time.monotonic() + timeout
    with server.client() as client:
        while pending and time.monotonic() < deadline:
            for photo in list(pending):
                response = client.get(f"/api/v2/photos/{photo}", headers=KEY)
                if response.status_code == 200 and response.json()["status"] != "queued":
                    pending.discard(photo)
            time.sleep(0.3)
    assert not pending, f"never left 'queued': {sorted(pending)[:10]}"


# --- faults ---------------------------------------------------------------------------------


class StackFaults:
    """Stop and start the servers of an `EmbeddedStack` one at a time, on the same ports and
    state directory (what an operator's restart or a crash and supervisor restart look like).
    The restarted process replaces the stopped one in the stack's list, so `stack.stop()` still
    stops everything."""

    def __init__(self, stack: EmbeddedStack) -> None:
        self.stack = stack

    def _entry(self, name: str) -> Any:
        for running in self.stack._running:
            if running.server.name == name:
                return running
        raise KeyError(f"no running {name} in this stack")

    def stop(self, name: str) -> None:
        self._entry(name).process.stop()

    def start(self, name: str) -> None:
        entry = self._entry(name)
        entry.server.prepare()  # idempotent; re-asserts the data directory's permissions
        process = entry.server.process()
        process.start()
        wait_until(
            entry.server.is_ready, timeout=self.stack.settings.stack.start_timeout_s, what=name
        )
        entry.server.after_start()
        entry.process = process

    @contextmanager
    def down(self, name: str) -> Iterator[None]:
        self.stop(name)
        try:
            yield
        finally:
            self.start(name)


def http_client(server: ServerProcess) -> httpx.Client:
    """A client of the server with a timeout that a slow poison upload fits in."""
    return httpx.Client(base_url=server.base_url, timeout=60)
