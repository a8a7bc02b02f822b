"""The embedder's work on one batch of `photos.uploaded` records, without a broker.

decode events → fetch photos from S3 (concurrently) → decode images and run the face engine on
the whole batch (off the event loop, batched inference) → write each photo in its own
transaction → report what to publish: indexed events for the written photos, DLQ events for the
poison ones. A dependency that is down raises `TransientError`: the caller retries the whole
batch without committing (every write is idempotent, so a retry duplicates nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from libs.common.events import (
    ErrorKind,
    PhotoFailed,
    PhotoIndexed,
    PhotoUploaded,
    RejectedFace,
    SourceRecord,
    StageTimings,
    is_valid_id,
)
from libs.common.face.results import PhotoFaces
from libs.common.imaging import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
    decode_image,
)
from libs.common.log import get_logger, log_context, request_id_from_headers
from libs.common.metrics import (
    FACES_PER_PHOTO,
    FACES_REJECTED,
    PHOTOS_FAILED,
    PHOTOS_INDEXED,
    PHOTOS_SKIPPED,
    STAGE_SECONDS,
)
from libs.common.runtime import Need, Runtime
from libs.common.storage import ObjectNotFoundError, StorageUnavailableError
from services.embedder.store import WriteResult, write_failed, write_indexed

log = get_logger(__name__)

Image = npt.NDArray[np.uint8]


class TransientError(RuntimeError):
    """A dependency failed in a way that may pass; retry the batch later, commit nothing."""

    def __init__(self, dependency: str, cause: BaseException) -> None:
        super().__init__(f"{dependency}: {type(cause).__name__}: {cause}")
        self.dependency = dependency


@dataclass(frozen=True)
class RawRecord:
    """One Kafka record as consumed (the worker never sees broker objects)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, bytes] = field(default_factory=dict)

    def source(self) -> SourceRecord:
        return SourceRecord(
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            key=self.key.decode("utf-8", "replace") if self.key is not None else None,
            value=self.value[:100_000].decode("utf-8", "replace"),
        )


@dataclass
class _Photo:
    record: RawRecord
    event: PhotoUploaded
    request_id: str
    timings: dict[str, float] = field(default_factory=dict)
    image: Image | None = None
    faces: PhotoFaces | None = None


@dataclass
class BatchOutcome:
    indexed: list[tuple[PhotoIndexed, str]] = field(default_factory=list)  # (event, request id)
    failed: list[tuple[PhotoFailed, str]] = field(default_factory=list)
    skipped: int = 0


_IMAGE_ERROR_KINDS: dict[type[ImageError], ErrorKind] = {
    ImageTooLargeError: "image_too_large",
    UnsupportedImageError: "unsupported_image",
    CorruptImageError: "corrupt_image",
}
_DB_TRANSIENT = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, TimeoutError)


def _photo_id_from_key(key: bytes | None) -> str | None:
    """An invalid event's photo id, from its Kafka key when that is a valid id."""
    if key is None:
        return None
    text = key.decode("utf-8", "replace")
    return text if is_valid_id(text) else None


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class EmbedderWorker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self._download_slots = asyncio.Semaphore(self.settings.embedder.download_concurrency)

    async def process_batch(self, records: Sequence[RawRecord]) -> BatchOutcome:
        outcome = BatchOutcome()
        photos = [p for r in records if (p := self._decode_event(r, outcome)) is not None]
        await asyncio.gather(*(self._download(p, outcome) for p in photos))
        photos = [p for p in photos if p.image is not None]
        await self._analyze(photos, outcome)
        for photo in photos:
            if photo.faces is not None:
                await self._store(photo, outcome)
        return outcome

    # --- stages --------------------------------------------------------------------------

    def _decode_event(self, record: RawRecord, outcome: BatchOutcome) -> _Photo | None:
        request_id = request_id_from_headers(record.headers)
        try:
            event = PhotoUploaded.model_validate_json(record.value)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            self._dlq(outcome, record, request_id, None, "invalid_event", detail[:2000], 1)
            return None
        return _Photo(record, event, request_id)

    async def _download(self, photo: _Photo, outcome: BatchOutcome) -> None:
        attempts = self.settings.embedder.missing_object_attempts
        ref = photo.event.object
        start = time.perf_counter()
        for attempt in range(1, attempts + 1):
            try:
                async with self._download_slots:
                    data = await self.runtime.objects().get(ref.key, bucket=ref.bucket)
                break
            except ObjectNotFoundError as exc:
                if attempt == attempts:
                    await self._fail(photo, outcome, "missing_object", str(exc), attempts)
                    return
                await asyncio.sleep(0.5 * attempt)
            except StorageUnavailableError as exc:
                raise TransientError(Need.S3, exc) from exc
        photo.timings["download_ms"] = _ms(start)
        face = self.settings.face

        def decode() -> tuple[Image, float]:
            # Timed inside the pool: the time spent queueing for a thread is not decoding.
            begin = time.perf_counter()
            image = decode_image(
                data, max_bytes=face.max_image_bytes, max_pixels=face.max_image_pixels
            )
            return image, _ms(begin)

        try:
            photo.image, photo.timings["decode_ms"] = await self.runtime.run_cpu(decode)
        except ImageError as exc:
            kind = _IMAGE_ERROR_KINDS.get(type(exc), "corrupt_image")
            await self._fail(photo, outcome, kind, str(exc), 1)
            return

    async def _analyze(self, photos: list[_Photo], outcome: BatchOutcome) -> None:
        if not photos:
            return
        engine = self.runtime.face_engine()
        images = [p.image for p in photos if p.image is not None]
        results: list[PhotoFaces | None] = []
        try:
            results.extend(await self.runtime.run_cpu(engine.analyze_batch, images))
        except Exception:
            # Find the photo that breaks the engine; the others are indexed as usual.
            results.clear()
            for photo in photos:
                try:
                    results.append(await self.runtime.run_cpu(engine.analyze, photo.image))
                except Exception as exc:
                    log.exception("face engine failed", photo_id=photo.event.photo_id)
                    await self._fail(photo, outcome, "processing_error", repr(exc)[:2000], 1)
                    results.append(None)
        for photo, result in zip(photos, results, strict=True):
            photo.faces = result

    async def _store(self, photo: _Photo, outcome: BatchOutcome) -> None:
        assert photo.faces is not None
        engine = self.runtime.face_engine()
        start = time.perf_counter()
        try:
            written = await write_indexed(
                self.runtime.pool(), photo.event, photo.faces, engine.pack.id
            )
        except _DB_TRANSIENT as exc:
            raise TransientError(Need.DB, exc) from exc
        photo.timings["db_ms"] = _ms(start)
        if written in (WriteResult.ERASED, WriteResult.SUPERSEDED):
            self._skip(photo, outcome, written)
        elif written is WriteResult.CONFLICT:
            self._conflict(photo, outcome)
        else:
            self._indexed(photo, outcome, engine.pack.id)

    # --- outcomes ------------------------------------------------------------------------

    def _indexed(self, photo: _Photo, outcome: BatchOutcome, model_id: str) -> None:
        assert photo.faces is not None
        faces = photo.faces
        engine_ms = faces.timings_ms
        timings = StageTimings(
            download_ms=photo.timings.get("download_ms", 0.0),
            decode_ms=photo.timings.get("decode_ms", 0.0),
            detect_ms=engine_ms.get("detect", 0.0),
            embed_ms=engine_ms.get("embed", 0.0) + engine_ms.get("align", 0.0),
            db_ms=photo.timings.get("db_ms", 0.0),
        )
        total = sum(timings.model_dump().values())
        event = PhotoIndexed(
            photo_id=photo.event.photo_id,
            session_id=photo.event.session_id,
            faces_indexed=len(faces.faces),
            faces_rejected=[
                RejectedFace(reason=r.reason, bbox=list(r.bbox)) for r in faces.rejected
            ],
            model_id=model_id,
            timings=timings.model_copy(update={"total_ms": total}),
        )
        outcome.indexed.append((event, photo.request_id))
        PHOTOS_INDEXED.inc()
        FACES_PER_PHOTO.observe(len(faces.faces))
        for rejected in faces.rejected:
            FACES_REJECTED.labels(reason=rejected.reason).inc()
        for stage, value in timings.model_dump().items():
            if stage != "total_ms":
                STAGE_SECONDS.labels("embedder", stage.removesuffix("_ms")).observe(value / 1000)
        with log_context(
            request_id=photo.request_id,
            photo_id=photo.event.photo_id,
            session_id=photo.event.session_id,
        ):
            log.info("photo indexed", faces=len(faces.faces), rejected=len(faces.rejected))

    def _skip(self, photo: _Photo, outcome: BatchOutcome, why: WriteResult) -> None:
        outcome.skipped += 1
        PHOTOS_SKIPPED.labels(reason=why.value).inc()
        with log_context(photo_id=photo.event.photo_id, session_id=photo.event.session_id):
            log.info("skipped", reason=why.value)

    def _conflict(self, photo: _Photo, outcome: BatchOutcome) -> None:
        message = f"photo_id {photo.event.photo_id!r} belongs to another session"
        self._dlq(
            outcome, photo.record, photo.request_id, photo.event, "photo_conflict", message, 1
        )

    async def _fail(
        self, photo: _Photo, outcome: BatchOutcome, kind: ErrorKind, error: str, attempts: int
    ) -> None:
        """A poison photo: status `failed` in the database, and an event for the DLQ."""
        try:
            written = await write_failed(self.runtime.pool(), photo.event, f"{kind}: {error}")
        except _DB_TRANSIENT as exc:
            raise TransientError(Need.DB, exc) from exc
        if written in (WriteResult.ERASED, WriteResult.SUPERSEDED):
            self._skip(photo, outcome, written)
            return
        self._dlq(outcome, photo.record, photo.request_id, photo.event, kind, error, attempts)

    def _dlq(
        self,
        outcome: BatchOutcome,
        record: RawRecord,
        request_id: str,
        event: PhotoUploaded | None,
        kind: ErrorKind,
        error: str,
        attempts: int,
    ) -> None:
        failed = PhotoFailed(
            photo_id=event.photo_id if event else _photo_id_from_key(record.key),
            session_id=event.session_id if event else None,
            error_kind=kind,
            error=error[:2000],
            attempts=attempts,
            source=record.source(),
        )
        outcome.failed.append((failed, request_id))
        PHOTOS_FAILED.labels(kind=kind).inc()
        ids: dict[str, Any] = {"request_id": request_id}
        if event is not None:
            ids |= {"photo_id": event.photo_id, "session_id": event.session_id}
        with log_context(**ids):
            log.warning("photo sent to DLQ", error_kind=kind, error=error[:300], attempts=attempts)
