"""The Kafka side of the embedder: a batch subscriber in consumer group `facepass-embedder`.

Thin on purpose: turn the consumed records into `RawRecord`s (records.py), let `EmbedderWorker`
do the work, publish the indexed, matched and DLQ events, return. The offset is committed only
when the handler returns (AckPolicy.NACK_ON_ERROR): after the photos' rows are committed in
PostgreSQL and their events are acknowledged by the broker. If a dependency is down the handler
waits (growing back-off) and raises; FastStream then seeks the partitions back to the batch's first
record, so the same batch comes again and nothing is lost. Poison messages never raise: they go
to the DLQ and the partition moves on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel

from libs.common.events import PhotoFailed, PhotoIndexed, PhotoMatched, PhotoUploaded
from libs.common.log import REQUEST_ID_HEADER, get_logger
from libs.common.metrics import BATCH_SIZE, DLQ_MESSAGES, TRANSIENT_RETRIES
from libs.common.runtime import Runtime
from services.embedder.faults import crash_point
from services.embedder.partitions import PartitionLog
from services.embedder.records import raw_records
from services.embedder.steps import TransientError
from services.embedder.worker import EmbedderWorker

log = get_logger(__name__)


class _Backoff:
    """Doubling delay between retries of a failing batch, reset by a success."""

    def __init__(self, maximum_s: float) -> None:
        self.maximum_s = maximum_s
        self.next_s = 0.5

    async def wait(self) -> None:
        await asyncio.sleep(self.next_s)
        self.next_s = min(self.next_s * 2, self.maximum_s)

    def reset(self) -> None:
        self.next_s = 0.5


def _send(publisher: Any, event: BaseModel, key: str | None, request_id: str) -> Any:
    """One event's publication (awaited with the batch's others), keyed, with the request id."""
    return publisher.publish(
        event.model_dump(mode="json"),
        key=key.encode() if key else None,
        headers={REQUEST_ID_HEADER: request_id},
    )


async def register_embedder(runtime: Runtime) -> None:
    """Declare the subscriber and its publishers on the runtime's broker (before it starts)."""
    broker = runtime.kafka()
    kafka, config = runtime.settings.kafka, runtime.settings.embedder
    worker = EmbedderWorker(runtime)
    backoff = _Backoff(config.retry_max_s)
    indexed = broker.publisher(
        kafka.topic_indexed,
        title="photos.indexed:embedder",
        description="A photo's faces are searchable (key: photo_id).",
        schema=PhotoIndexed,
    )
    matched = broker.publisher(
        kafka.topic_matched,
        title="photos.matched:embedder",
        description=(
            "A photo new to the session shows the person of a live notify-me subscription "
            "(key: subscription_id; event_id stable per subscription and photo: at least once)."
        ),
        schema=PhotoMatched,
    )
    dlq = broker.publisher(
        kafka.topic_dlq,
        title="photos.dlq:embedder",
        description="A message that could not be indexed, with the reason and attempts.",
        schema=PhotoFailed,
    )

    @broker.subscriber(
        kafka.topic_uploaded,
        group_id=kafka.consumer_group,
        batch=True,
        max_records=config.batch_size,
        batch_timeout_ms=config.batch_wait_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        listener=PartitionLog(),
        title="photos.uploaded:embedder",
        description=(
            "Photos to index (key: photo_id), from ingest or published by upstream systems; "
            f"payload: schemas/photos.uploaded.v1.schema.json ({PhotoUploaded.__name__})."
        ),
    )
    async def on_photos_uploaded(message: KafkaMessage) -> None:
        records = raw_records(message.raw_message)
        BATCH_SIZE.observe(len(records))
        try:
            outcome = await worker.process_batch(records)
        except TransientError as exc:
            TRANSIENT_RETRIES.labels(dependency=exc.dependency).inc()
            log.warning("batch will be retried", dependency=exc.dependency, error=str(exc)[:300])
            await backoff.wait()
            raise
        except Exception:
            # Not a photo's fault (those go to the DLQ): a bug or a broken deployment. Retry
            # slowly rather than poison every photo of the batch.
            TRANSIENT_RETRIES.labels(dependency="unknown").inc()
            log.exception("batch failed, will be retried")
            await backoff.wait()
            raise
        backoff.reset()
        crash_point("after-write")  # the rows are committed, the offsets not yet (tests only)
        DLQ_MESSAGES.inc(len(outcome.failed))
        sends = [
            *(_send(indexed, e, e.photo_id, r) for e, r in outcome.indexed),
            *(_send(matched, e, e.subscription_id, r) for e, r in outcome.matched),
            *(_send(dlq, e, e.photo_id, r) for e, r in outcome.failed),
        ]
        await asyncio.gather(*sends)
        crash_point("after-publish")  # the events are out, the offsets not yet (tests only)
