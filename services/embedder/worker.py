"""The embedder's work on one batch of `photos.uploaded` records, without a broker.

parse every record → fetch and decode the photos and put their thumbnails and previews in S3
(concurrently; decoding and encoding in the CPU pool) → analyze each photo as soon as it is
decoded, on every inference worker (lanes.py) → store each photo in its own transaction, naming
its renditions → match it against the session's "notify me" subscriptions (matching.py) → the
outcome: indexed and matched events for the written photos, DLQ events for the poison ones
(steps.py has the steps, outcomes.py the events).

Renditions go to S3 before the database names them, so an indexed photo always has its
thumbnail: a crash in between leaves objects no row names yet, and the replay puts the same
objects (named by the upload's content) again and writes the row. Copies that no row names
after a write (the replaced bytes', or a skipped write's own) are deleted after it.

A dependency that is down raises `TransientError`: the caller retries the whole batch without
committing (every write is idempotent, so a retry duplicates nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from libs.common.db.photos import WriteResult, Written
from libs.common.db.renditions import PhotoRenditions
from libs.common.face.photo import PhotoInput
from libs.common.face.results import PhotoFaces
from libs.common.imaging import DecodedImage
from libs.common.log import request_id_from_headers
from libs.common.runtime import Runtime
from libs.common.storage import upload_digest
from services.embedder import steps
from services.embedder.faults import crash_point
from services.embedder.lanes import InferenceLanes
from services.embedder.matching import SubscriptionMatcher
from services.embedder.outcomes import (
    BatchOutcome,
    add_failed,
    add_indexed,
    add_matched,
    add_skipped,
    dlq_event,
    indexed_event,
)
from services.embedder.records import RawRecord
from services.embedder.steps import Photo, PhotoFault, ms_since


@dataclass(frozen=True)
class Decoded:
    photo: Photo
    image: DecodedImage
    renditions: PhotoRenditions
    stage_ms: dict[str, float]


class EmbedderWorker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self._download_slots = asyncio.Semaphore(self.settings.embedder.download_concurrency)
        # Photos are decoded a few at a time, in the batch's order, rather than all at once: the
        # first one then reaches the face engine after one decode instead of after the batch's.
        self._decode_slots = asyncio.Semaphore(max(2, runtime.inference_workers))
        self._matcher = SubscriptionMatcher(runtime.pool)

    async def process_batch(self, records: Sequence[RawRecord]) -> BatchOutcome:
        outcome = BatchOutcome()
        parsed: list[Photo] = []
        for record in records:
            try:
                parsed.append(steps.parse(record))
            except PhotoFault as fault:
                request_id = request_id_from_headers(record.headers)
                add_failed(outcome, dlq_event(record, None, fault), request_id)
        engine = self.runtime.face_engine()

        async def analyze(photos: list[PhotoInput]) -> list[PhotoFaces | PhotoFault]:
            return await self.runtime.run_inference(steps.analyze, engine, photos)

        lanes = InferenceLanes(self.runtime.inference_workers, analyze)
        prepared = await lanes.run([partial(self._fetch_and_decode, p) for p in parsed])
        crash_point("after-renditions")  # in S3, not yet in the database (tests only)
        for photo, (item, faces) in zip(parsed, prepared, strict=True):
            if isinstance(item, PhotoFault):
                await self._fail(outcome, photo, item)
            elif isinstance(faces, PhotoFault):
                await self._fail(outcome, photo, faces, item.renditions)
            else:
                assert faces is not None, "a decoded photo is always analysed"
                # Found on the reduced decode; stored in the photo's own pixels.
                await self._store(outcome, item, faces.scaled(item.image.scale), engine.pack.id)
        return outcome

    async def _fetch_and_decode(
        self, photo: Photo, analyze: Callable[[PhotoInput], None]
    ) -> Decoded | PhotoFault:
        """Fetch and decode the photo, hand its pixels to `analyze` (the inference lanes), then
        make and upload its renditions while it is analysed."""
        start = time.perf_counter()
        try:
            data = await steps.fetch(
                self.runtime.objects(),
                photo.event,
                attempts=self.settings.embedder.missing_object_attempts,
                slots=self._download_slots,
            )
            download_ms = ms_since(start)
            async with self._decode_slots:
                image, engine_input, decode_ms = await self.runtime.run_cpu(
                    steps.decode, data, self.settings.face
                )
                analyze(engine_input)
                made, render_ms = await self.runtime.run_cpu(
                    steps.render, image.pixels, self.settings.renditions
                )
        except PhotoFault as fault:
            return fault
        renditions = await steps.put_renditions(
            self.runtime.objects(),
            photo.event,
            upload_digest(data, photo.event.content_sha256),
            made,
            image.size,
        )
        stage_ms = {"download_ms": download_ms, "decode_ms": decode_ms, "render_ms": render_ms}
        return Decoded(photo, image, renditions, stage_ms)

    async def _store(
        self, outcome: BatchOutcome, item: Decoded, faces: PhotoFaces, model_id: str
    ) -> None:
        photo = item.photo
        start = time.perf_counter()
        stored = await steps.store_indexed(
            self.runtime.pool(), photo.event, faces, model_id, item.renditions
        )
        await steps.delete_stale(self.runtime.objects(), stored.stale_keys)
        written = stored.result
        if written in (WriteResult.ERASED, WriteResult.SUPERSEDED):
            add_skipped(outcome, photo.event, written)
        elif written is WriteResult.CONFLICT:
            message = f"photo_id {photo.event.photo_id!r} belongs to another session"
            fault = PhotoFault("photo_conflict", message)
            add_failed(outcome, dlq_event(photo.record, photo.event, fault), photo.request_id)
        else:
            stage_ms = {**item.stage_ms, "db_ms": ms_since(start)}
            event = indexed_event(photo.event, faces, stage_ms, model_id)
            add_indexed(outcome, event, photo.request_id)
            matched = await steps.match_subscriptions(self._matcher, photo.event, faces, model_id)
            add_matched(outcome, matched, photo.request_id)

    async def _fail(
        self,
        outcome: BatchOutcome,
        photo: Photo,
        fault: PhotoFault,
        renditions: PhotoRenditions | None = None,
    ) -> None:
        """A poison photo: status `failed` in the database, and an event for the DLQ."""
        stored: Written = await steps.store_failed(
            self.runtime.pool(), photo.event, fault, renditions
        )
        await steps.delete_stale(self.runtime.objects(), stored.stale_keys)
        written = stored.result
        if written in (WriteResult.ERASED, WriteResult.SUPERSEDED):
            add_skipped(outcome, photo.event, written)
        else:
            add_failed(outcome, dlq_event(photo.record, photo.event, fault), photo.request_id)
