"""Read the FacePass dead-letter queue, and replay what was fixed (docs/operations.md).

    .venv/bin/python deploy/scripts/dlq.py list                    # read, change nothing
    .venv/bin/python deploy/scripts/dlq.py drain --replay missing_object --replay processing_error

`list` prints every DLQ message after the offsets the drain group (`facepass-dlq-drain`)
committed: partition/offset, photo, error_kind, attempts, error. `drain` does the same, then
republishes the original message (source.value, keyed by source.key) of each chosen error kind
to the uploaded topic, and commits the drain group's offsets, so the next `list` starts after
them. Kinds not chosen are reported and counted as handled. Settings (KAFKA_*) come from the
environment or .env, as for every facepass command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from libs.common.settings import KafkaSettings, load_settings

DRAIN_GROUP = "facepass-dlq-drain"


def _line(record: Any, event: dict[str, Any]) -> str:
    error = str(event.get("error", ""))[:120]
    return (
        f"{record.partition}/{record.offset} photo={event.get('photo_id')} "
        f"session={event.get('session_id')} kind={event.get('error_kind')} "
        f"attempts={event.get('attempts')} error={error}"
    )


async def run(kafka: KafkaSettings, group: str, replay: set[str], commit: bool) -> int:
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
        partitions = [
            TopicPartition(kafka.topic_dlq, p)
            for p in sorted(consumer.partitions_for_topic(kafka.topic_dlq) or [])
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)

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
                    print(_line(record, event))
                    source = event.get("source") or {}
                    if event.get("error_kind") in replay and commit:
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
    action = f"replayed {replayed} to {kafka.topic_uploaded}, offsets committed" if commit else ""
    print(f"{seen} DLQ messages after group {group}'s offsets. {action}".rstrip())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["list", "drain"])
    parser.add_argument(
        "--replay", action="append", default=[], metavar="ERROR_KIND",
        help="with drain: republish the messages of this error_kind (repeat for several)",
    )  # fmt: skip
    parser.add_argument("--group", default=DRAIN_GROUP, help=f"default {DRAIN_GROUP}")
    args = parser.parse_args(argv)
    kafka = load_settings().kafka
    return asyncio.run(run(kafka, args.group, set(args.replay), args.action == "drain"))


if __name__ == "__main__":
    sys.exit(main())
