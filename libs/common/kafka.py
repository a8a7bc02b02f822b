"""Kafka plumbing shared by the services: connection arguments and topic creation.

Topics are created explicitly with their partition count before any consumer starts: a topic
that a producer auto-creates gets one partition, which would cap the embedder group at one
consumer.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from libs.common.settings import KafkaSettings


def topic_partitions(kafka: KafkaSettings) -> dict[str, int]:
    """Every FacePass topic and its partition count.

    The uploaded topic bounds how many embedders share the work (one partition is read by one
    consumer of the group), so it gets KAFKA_PARTITIONS. The indexed and DLQ topics are read by
    few consumers and keep per-photo order by key, so a few partitions are enough.
    """
    small = min(kafka.partitions, 3)
    return {
        kafka.topic_uploaded: kafka.partitions,
        kafka.topic_indexed: small,
        kafka.topic_dlq: small,
    }


async def ensure_topics(kafka: KafkaSettings, topics: dict[str, int] | None = None) -> list[str]:
    """Create the topics that are missing; returns the names created."""
    wanted = topics if topics is not None else topic_partitions(kafka)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=count, replication_factor=1)
            for name, count in wanted.items()
            if name not in existing
        ]
        created: list[str] = []
        for topic in missing:
            try:
                await admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass  # another process created it in between
        return created
    finally:
        await admin.close()


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    committed: int | None  # None: the group has committed nothing on this partition yet
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


async def consumer_lag(kafka: KafkaSettings, group: str, topic: str) -> list[PartitionLag]:
    """Per partition of `topic`: the group's committed offset, the log end offset, the lag.

    Kafka semantics (end offset minus committed offset). Note: the embedded tansu broker can
    report stale end offsets right after a restart until the partition is written again.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, request_timeout_ms=10_000)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        described = await admin.describe_topics([topic])
        partitions = [
            TopicPartition(topic, p["partition"]) for d in described for p in d["partitions"]
        ]
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        ends = await consumer.end_offsets(partitions)
        lags = []
        for tp in sorted(partitions, key=lambda tp: tp.partition):
            meta = committed.get(tp)
            offset = meta.offset if meta is not None and meta.offset >= 0 else None
            lags.append(PartitionLag(tp.partition, offset, ends[tp]))
        return lags
    finally:
        await consumer.stop()
        await admin.close()
