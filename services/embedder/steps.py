"""The embedder's steps, each taking values and returning values:

parse (record → photo) → fetch (photo → bytes) → decode (bytes → image) → render (image →
thumbnail and preview, put in S3) → analyze (images → faces) → store (faces and renditions →
what the database did). A step that finds the photo itself at fault
returns (or raises) a `PhotoFault`, which ends that photo's way in the DLQ; a dependency that
is down raises `TransientError`, which makes the whole batch retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from libs.common import storage
from libs.common.db import photos
from libs.common.db.photos import Written
from libs.common.db.renditions import PhotoRenditions
from libs.common.events import ErrorKind, PhotoMatched, PhotoUploaded
from libs.common.face.engine import FaceEngine
from libs.common.face.photo import PhotoInput, decode_photo
from libs.common.face.results import PhotoFaces
from libs.common.imaging import (
    CorruptImageError,
    DecodedImage,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from libs.common.log import get_logger, request_id_from_headers
from libs.common.renditions import Rendition, make_renditions
from libs.common.runtime import Need
from libs.common.settings import FaceSettings, RenditionSettings
from libs.common.storage import ObjectNotFoundError, ObjectStore, StorageUnavailableError
from services.embedder.matching import SubscriptionMatcher
from services.embedder.records import RawRecord

log = get_logger(__name__)

Image = npt.NDArray[np.uint8]

_IMAGE_ERROR_KINDS: dict[type[ImageError], ErrorKind] = {
    ImageTooLargeError: "image_too_large",
    UnsupportedImageError: "unsupported_image",
    CorruptImageError: "corrupt_image",
}
_DB_TRANSIENT = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, TimeoutError)


class TransientError(RuntimeError):
    """A dependency failed in a way that may pass; retry the batch later, commit nothing."""

    def __init__(self, dependency: str, cause: BaseException) -> None:
        super().__init__(f"{dependency}: {type(cause).__name__}: {cause}")
        self.dependency = dependency


class PhotoFault(Exception):
    """The photo (or its event) cannot be indexed, and retrying will not change that."""

    def __init__(self, kind: ErrorKind, error: str, attempts: int = 1) -> None:
        super().__init__(f"{kind}: {error}")
        self.kind: ErrorKind = kind
        self.error = error[:2000]
        self.attempts = attempts


@dataclass(frozen=True)
class Photo:
    """A record whose event parsed."""

    record: RawRecord
    event: PhotoUploaded
    request_id: str


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def parse(record: RawRecord) -> Photo:
    """The record's `photos.uploaded` event; PhotoFault `invalid_event` if it is not one."""
    try:
        event = PhotoUploaded.model_validate_json(record.value)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PhotoFault("invalid_event", detail) from exc
    return Photo(record, event, request_id_from_headers(record.headers))


async def fetch(
    store: ObjectStore, event: PhotoUploaded, *, attempts: int, slots: asyncio.Semaphore
) -> bytes:
    """The photo's bytes from S3. A missing object is tried `attempts` times (an upstream
    system may publish before its upload is visible), then it is the photo's fault."""
    ref = event.object
    for attempt in range(1, attempts + 1):
        try:
            async with slots:
                return await store.get(ref.key, bucket=ref.bucket)
        except ObjectNotFoundError as exc:
            if attempt == attempts:
                raise PhotoFault("missing_object", str(exc), attempts) from exc
            await asyncio.sleep(0.5 * attempt)
        except StorageUnavailableError as exc:
            raise TransientError(Need.S3, exc) from exc
    raise AssertionError("unreachable: attempts >= 1")


def decode(data: bytes, face: FaceSettings) -> tuple[DecodedImage, PhotoInput, float]:
    """CPU-bound (run it in the pool): the image, reduced to the largest detector pass where
    the format allows, the engine's input for it (photo.py), and the ms it took, timed inside
    the pool so that queueing for a thread is not counted as decoding."""
    begin = time.perf_counter()
    try:
        image, engine_input = decode_photo(data, face)
    except ImageError as exc:
        raise PhotoFault(_IMAGE_ERROR_KINDS.get(type(exc), "corrupt_image"), str(exc)) from exc
    return image, engine_input, ms_since(begin)


def render(pixels: Image, settings: RenditionSettings) -> tuple[tuple[Rendition, ...], float]:
    """CPU-bound (run it in the pool): the photo's thumbnail and preview, and the ms it took."""
    begin = time.perf_counter()
    try:
        renditions = make_renditions(pixels, settings)
    except Exception as exc:
        raise PhotoFault("processing_error", f"renditions: {exc!r}") from exc
    return renditions, ms_since(begin)


async def put_renditions(
    store: ObjectStore,
    event: PhotoUploaded,
    digest: str,
    renditions: Sequence[Rendition],
    size: tuple[int, int],
) -> PhotoRenditions:
    """Put the copies in S3 under the photo's prefix, before the database names them (a
    replay after a crash in between puts the same objects again)."""
    try:
        keys = await storage.put_renditions(
            store, event.session_id, event.photo_id, digest, renditions
        )
    except StorageUnavailableError as exc:
        raise TransientError(Need.S3, exc) from exc
    return PhotoRenditions(keys["thumbnail"], keys["preview"], width=size[0], height=size[1])


async def delete_stale(store: ObjectStore, keys: Sequence[str]) -> None:
    """Delete rendition objects no photo names any more. Best effort: the database is already
    committed, and whatever is left stays under the photo's prefix until it is erased."""
    if not keys:
        return
    try:
        await store.delete(list(keys))
    except StorageUnavailableError as exc:
        log.warning("stale renditions left in S3", keys=len(keys), error=str(exc))


def analyze(engine: FaceEngine, images: Sequence[PhotoInput]) -> list[PhotoFaces | PhotoFault]:
    """CPU-bound (run it in the pool): faces of every image, in one batched engine call. If the
    batch breaks the engine, each image is tried alone: the one at fault gets a
    `processing_error`, the others their faces."""
    if not images:
        return []
    try:
        return list(engine.analyze_batch(images))
    except Exception:
        results: list[PhotoFaces | PhotoFault] = []
        for image in images:
            try:
                results.append(engine.analyze(image))
            except Exception as exc:
                log.exception("face engine failed")
                results.append(PhotoFault("processing_error", repr(exc)))
        return results


async def store_indexed(
    pool: asyncpg.Pool,
    event: PhotoUploaded,
    faces: PhotoFaces,
    model_id: str,
    renditions: PhotoRenditions | None = None,
) -> Written:
    """Write the photo's faces and renditions (one transaction); a database that is down is
    transient."""
    try:
        return await photos.record_indexed(pool, event, faces, model_id, renditions)
    except _DB_TRANSIENT as exc:
        raise TransientError(Need.DB, exc) from exc


async def match_subscriptions(
    matcher: SubscriptionMatcher, event: PhotoUploaded, faces: PhotoFaces, model_id: str
) -> list[PhotoMatched]:
    """The written photo's matched events (matching.py); a database that is down is transient
    (the batch is retried: the write and the matching are both idempotent)."""
    try:
        return await matcher.matched(event.session_id, model_id, event.photo_id, faces)
    except _DB_TRANSIENT as exc:
        raise TransientError(Need.DB, exc) from exc


async def store_failed(
    pool: asyncpg.Pool,
    event: PhotoUploaded,
    fault: PhotoFault,
    renditions: PhotoRenditions | None = None,
) -> Written:
    """Record the photo as failed with the fault's reason."""
    try:
        error = f"{fault.kind}: {fault.error}"
        return await photos.record_failed(pool, event, error, renditions)
    except _DB_TRANSIENT as exc:
        raise TransientError(Need.DB, exc) from exc
