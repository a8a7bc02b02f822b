"""Reading and writing topics of the test broker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, KafkaError, Message, Producer

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
            topic_matched=f"t{tag}.matched",
            partitions=partitions,
            consumer_group=f"group-{tag}",
        )
        asyncio.run(ensure_topics(self.kafka))

    def env(self, group: str | None = None) -> dict[str, str]:
        return {
            "KAFKA_TOPIC_UPLOADED": self.kafka.topic_uploaded,
            "KAFKA_TOPIC_INDEXED": self.kafka.topic_indexed,
            "KAFKA_TOPIC_DLQ": self.kafka.topic_dlq,
            "KAFKA_TOPIC_MATCHED": self.kafka.topic_matched,
            "KAFKA_CONSUMER_GROUP": group or self.kafka.consumer_group,
        }


async def publish_batches(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], *, batch: int = 25
) -> None:
    """Publish (key, value) pairs the way a busy producer does: many records per produce
    request (`batch` sends, then a flush), spread over a few seconds, keyed to all partitions.

    Batches of several records, written in different seconds, are what showed the embedded
    broker's wrong ListOffsets answer (libs/common/kafka.py `log_end_offsets`).
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        for start in range(0, len(records), batch):
            for key, value in records[start : start + batch]:
                await producer.send(topic, value, key=key)
            await producer.flush()
            await asyncio.sleep(0.3)
    finally:
        await producer.stop()


async def consume_and_commit(
    bootstrap: str, topic: str, group: str, count: int, timeout_s: float = 60
) -> int:
    """Read `topic` as a member of `group` until `count` records came in, commit, return how
    many were read (may exceed `count` if more were there)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    seen = 0
    try:
        deadline = time.monotonic() + timeout_s
        while seen < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen += len(records)
        await consumer.commit()
        return seen
    finally:
        await consumer.stop()


def rdkafka_publish(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], config: dict[str, Any]
) -> dict[bytes, tuple[int, int]]:
    """Publish (key, value) pairs with librdkafka (confluent-kafka's Producer), as an upstream
    system on librdkafka would; returns each key's (partition, offset). A failed delivery fails
    the test."""
    producer = Producer({"bootstrap.servers": bootstrap, **config})
    delivered: dict[bytes, tuple[int, int]] = {}
    failed: list[KafkaError] = []

    def report(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failed.append(error)
        else:
            delivered[message.key()] = (message.partition(), message.offset())

    for key, value in records:
        producer.produce(topic, value=value, key=key, on_delivery=report)
    left = producer.flush(30)
    assert left == 0 and not failed, f"{left} undelivered, failed: {failed}"
    return delivered


def rdkafka_read_json(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[tuple[bytes | None, dict[str, Any]]]], bool],
    timeout_s: float = 90,
) -> list[tuple[bytes | None, dict[str, Any]]]:
    """(key, JSON value) pairs of `topic` from the start, read by a librdkafka consumer group,
    until `until(pairs)` holds or the time is up.

    session.timeout.ms is 6 s, not librdkafka's 45 s: the embedded broker answers a first
    JoinGroup only after about half the session timeout (23 s with the default).
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-rdkafka-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    pairs: list[tuple[bytes | None, dict[str, Any]]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not until(pairs):
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            pairs.append((message.key(), json.loads(message.value() or b"null")))
        return pairs
    finally:
        consumer.close()


def partitions_held(log: str) -> int:
    """How many partitions an embedder holds now, read off its log: the count of its last
    `partitions assigned` line, 0 after a later `partitions revoked` (the eager protocol revokes
    everything before a new assignment; services/embedder/partitions.py logs both)."""
    held = 0
    for line in log.splitlines():
        if '"partitions assigned"' in line:
            try:
                held = int(json.loads(line).get("count", 0))
            except ValueError:
                continue
        elif '"partitions revoked"' in line:
            held = 0
    return held
