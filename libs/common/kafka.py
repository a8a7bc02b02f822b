"""Kafka plumbing shared by the services: connection arguments and topic creation.

Topics are created explicitly with their partition count before any consumer starts: a topic
that a producer auto-creates gets one partition, which would cap the embedder group at one
consumer.
"""

from __future__ import annotations

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
