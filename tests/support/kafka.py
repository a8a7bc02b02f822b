"""Reading and writing topics of the test broker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from libs.common.kafka import ensure_topics
from libs.common.settings import KafkaSettings, Settings


async def publish(bootstrap: str, topic: str, value: bytes, key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def read_json(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[dict[str, Any]]], bool],
    timeout_s: float = 60,
) -> list[dict[str, Any]]:
    """Read `topic` from the start until `until(values)` holds or the time is up."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not until(values):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        values.append(json.loads(record.value))
                    except ValueError:
                        values.append({"_raw": record.value})
        return values
    finally:
        await consumer.stop()


class Topics:
    """A private set of topics and a consumer group on the test broker, so that a server
    started for some tests never shares the work (or the logs) of the session's embedder."""

    def __init__(self, stack: Settings, partitions: int = 4) -> None:
        tag = uuid.uuid4().hex[:8]
        self.kafka = KafkaSettings(
            bootstrap=stack.kafka.bootstrap,
            topic_uploaded=f"t{tag}.uploaded",
            topic_indexed=f"t{tag}.indexed",
            topic_dlq=f"t{tag}.dlq",
            partitions=partitions,
            consumer_group=f"group-{tag}",
        )
        asyncio.run(ensure_topics(self.kafka))

    def env(self, group: str | None = None) -> dict[str, str]:
        return {
            "KAFKA_TOPIC_UPLOADED": self.kafka.topic_uploaded,
            "KAFKA_TOPIC_INDEXED": self.kafka.topic_indexed,
            "KAFKA_TOPIC_DLQ": self.kafka.topic_dlq,
            "KAFKA_CONSUMER_GROUP": group or self.kafka.consumer_group,
        }
