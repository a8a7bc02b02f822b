"""The dead-letter queue, read and replayed by operators: behind `facepass dlq list|drain`.

Both read every DLQ message after the offsets the drain group (`facepass-dlq-drain`) committed.
`list` changes nothing. `drain` republishes the original message (source.value, keyed by
source.key) of each chosen error kind to the uploaded topic, then commits the drain group's
offsets, so the next `list` starts after them; kinds not chosen are reported and counted as
handled. The procedure: docs/operations.md, "Dead-letter queue".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, get_args

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from libs.common.events import ErrorKind
from libs.common.kafka import log_end_offsets
from libs.common.settings import KafkaSettings

DRAIN_GROUP = "facepass-dlq-drain"
#: The error kinds a DLQ message can carry (libs/common/events.py, PhotoFailed.error_kind).
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)


class DLQError(RuntimeError):
    """The DLQ cannot be read (no such topic); the message says why."""


@dataclass(frozen=True)
class DrainResult:
    group: str
    seen: int  # DLQ messages after the group's offsets
    replayed: int  # of them, republished to the uploaded topic
    replayed_to: str  # the uploaded topic
    committed: bool


def describe(partition: int, offset: int, event: dict[str, Any]) -> str:
    """One line per DLQ message: where it is, the photo, why it failed."""
    error = str(event.get("error", ""))[:120]
    return (
        f"{partition}/{offset} photo={event.get('photo_id')} "
        f"session={event.get('session_id')} kind={event.get('error_kind')} "
        f"attempts={event.get('attempts')} error={error}"
    )


async def drain(
    kafka: KafkaSettings,
    *,
    replay: Collection[str] = (),
    commit: bool = False,
    group: str = DRAIN_GROUP,
    echo: Callable[[str], None] = print,
) -> DrainResult:
    """Read (and `echo`) the DLQ after GROUP's offsets. With `commit`: republish the messages
    whose error_kind is in REPLAY to the uploaded topic, then commit GROUP's offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, enable_idempotence=kafka.enable_idempotence
    )
    await consumer.start()
    await producer.start()
    replayed = seen = 0
    try:
        if kafka.topic_dlq not in await consumer.topics():  # also refreshes the metadata
            raise DLQError(f"no topic {kafka.topic_dlq} on {kafka.bootstrap} (KAFKA_TOPIC_DLQ)")
        partitions = [
            TopicPartition(kafka.topic_dlq, p)
            for p in sorted(consumer.partitions_for_topic(kafka.topic_dlq) or [])
        ]
        consumer.assign(partitions)
        ends = await log_end_offsets(kafka.bootstrap, partitions)

        async def behind() -> bool:
            for tp, end in ends.items():
                if await consumer.position(tp) < end:
                    return True
            return False

        while await behind():
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    seen += 1
                    event = json.loads(record.value)
                    echo(describe(record.partition, record.offset, event))
                    source = event.get("source") or {}
                    if commit and event.get("error_kind") in replay:
                        key = source.get("key")
                        await producer.send_and_wait(
                            kafka.topic_uploaded,
                            value=str(source["value"]).encode(),
                            key=key.encode() if key else None,
                        )
                        replayed += 1
        if commit:
            await producer.flush()
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()
    return DrainResult(
        group=group,
        seen=seen,
        replayed=replayed,
        replayed_to=kafka.topic_uploaded,
        committed=commit,
    )
