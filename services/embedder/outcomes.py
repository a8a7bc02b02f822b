"""What a batch produced: the events to publish (indexed, DLQ) and the photos skipped, built
from the steps' values. Counting metrics and logging the outcome of each photo happens here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from libs.common.db.photos import WriteResult
from libs.common.events import (
    PhotoFailed,
    PhotoIndexed,
    PhotoMatched,
    PhotoUploaded,
    RejectedFace,
    is_valid_id,
)
from libs.common.events import StageTimings as Timings
from libs.common.face.results import PhotoFaces
from libs.common.log import get_logger, log_context
from libs.common.metrics import (
    FACES_PER_PHOTO,
    FACES_REJECTED,
    PHOTOS_FAILED,
    PHOTOS_INDEXED,
    PHOTOS_SKIPPED,
    STAGE_SECONDS,
    SUBSCRIPTION_MATCHES,
)
from services.embedder.records import RawRecord
from services.embedder.steps import PhotoFault

log = get_logger(__name__)


@dataclass
class BatchOutcome:
    indexed: list[tuple[PhotoIndexed, str]] = field(default_factory=list)  # (event, request id)
    failed: list[tuple[PhotoFailed, str]] = field(default_factory=list)
    matched: list[tuple[PhotoMatched, str]] = field(default_factory=list)
    skipped: int = 0


def photo_id_from_key(key: bytes | None) -> str | None:
    """An invalid event's photo id, from its Kafka key when that is a valid id."""
    if key is None:
        return None
    text = key.decode("utf-8", "replace")
    return text if is_valid_id(text) else None


def indexed_event(
    event: PhotoUploaded, faces: PhotoFaces, stage_ms: dict[str, float], model_id: str
) -> PhotoIndexed:
    """The `photos.indexed` event of a written photo; `stage_ms` holds download/decode/
    render/db."""
    engine_ms = faces.timings_ms
    timings = Timings(
        download_ms=stage_ms.get("download_ms", 0.0),
        decode_ms=stage_ms.get("decode_ms", 0.0),
        detect_ms=engine_ms.get("detect", 0.0),
        embed_ms=engine_ms.get("embed", 0.0) + engine_ms.get("align", 0.0),
        render_ms=stage_ms.get("render_ms", 0.0),
        db_ms=stage_ms.get("db_ms", 0.0),
    )
    total = sum(timings.model_dump().values())
    return PhotoIndexed(
        photo_id=event.photo_id,
        session_id=event.session_id,
        faces_indexed=len(faces.faces),
        faces_rejected=[RejectedFace(reason=r.reason, bbox=list(r.bbox)) for r in faces.rejected],
        model_id=model_id,
        timings=timings.model_copy(update={"total_ms": total}),
    )


def dlq_event(record: RawRecord, event: PhotoUploaded | None, fault: PhotoFault) -> PhotoFailed:
    """The `photos.dlq` event: the fault, and the original record to inspect or replay."""
    return PhotoFailed(
        photo_id=event.photo_id if event else photo_id_from_key(record.key),
        session_id=event.session_id if event else None,
        error_kind=fault.kind,
        error=fault.error,
        attempts=fault.attempts,
        source=record.source(),
    )


def add_indexed(outcome: BatchOutcome, indexed: PhotoIndexed, request_id: str) -> None:
    outcome.indexed.append((indexed, request_id))
    PHOTOS_INDEXED.inc()
    FACES_PER_PHOTO.observe(indexed.faces_indexed)
    for rejected in indexed.faces_rejected:
        FACES_REJECTED.labels(reason=rejected.reason).inc()
    for stage, value in indexed.timings.model_dump().items():
        if stage != "total_ms":
            STAGE_SECONDS.labels("embedder", stage.removesuffix("_ms")).observe(value / 1000)
    with log_context(
        request_id=request_id, photo_id=indexed.photo_id, session_id=indexed.session_id
    ):
        log.info("photo indexed", faces=indexed.faces_indexed, rejected=len(indexed.faces_rejected))


def add_matched(outcome: BatchOutcome, matched: list[PhotoMatched], request_id: str) -> None:
    """A written photo's matched events (never logged with anything of the subscription's
    embedding; the ids only)."""
    for event in matched:
        outcome.matched.append((event, request_id))
        SUBSCRIPTION_MATCHES.inc()
    if matched:
        with log_context(request_id=request_id, photo_id=matched[0].photo_id):
            log.info("photo matched subscriptions", subscriptions=len(matched))


def add_skipped(outcome: BatchOutcome, event: PhotoUploaded, why: WriteResult) -> None:
    outcome.skipped += 1
    PHOTOS_SKIPPED.labels(reason=why.value).inc()
    with log_context(photo_id=event.photo_id, session_id=event.session_id):
        log.info("skipped", reason=why.value)


def add_failed(outcome: BatchOutcome, failed: PhotoFailed, request_id: str) -> None:
    outcome.failed.append((failed, request_id))
    PHOTOS_FAILED.labels(kind=failed.error_kind).inc()
    ids: dict[str, Any] = {"request_id": request_id}
    if failed.photo_id is not None:
        ids["photo_id"] = failed.photo_id
    if failed.session_id is not None:
        ids["session_id"] = failed.session_id
    with log_context(**ids):
        log.warning(
            "photo sent to DLQ",
            error_kind=failed.error_kind,
            error=failed.error[:300],
            attempts=failed.attempts,
        )
