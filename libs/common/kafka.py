"""Kafka plumbing shared by the services: topic creation and consumer lag.

Topics are created explicitly with their partition count before any consumer starts: a topic
that a producer auto-creates gets one partition, which would cap the embedder group at one
consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from libs.common.settings import KafkaSettings


def topic_partitions(kafka: KafkaSettings) -> dict[str, int]:
    """Every FacePass topic and its partition count.

    The uploaded topic bounds how many embedders share the work (one partition is read by one
    consumer of the group), so it gets KAFKA_PARTITIONS. The indexed, DLQ and matched topics are
    read by few consumers and keep per-key order, so a few partitions are enough.
    """
    small = min(kafka.partitions, 3)
    return {
        kafka.topic_uploaded: kafka.partitions,
        kafka.topic_indexed: small,
        kafka.topic_dlq: small,
        kafka.topic_matched: small,
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
        """Records the group has still to read; never below 0 (a committed offset past the end
        is a broker's bad answer or a client's odd commit, not records read twice)."""
        return max(0, self.end - (self.committed or 0))


async def log_end_offsets(
    bootstrap: str, partitions: list[TopicPartition], timeout_s: float = 10.0
) -> dict[TopicPartition, int]:
    """The log end offset (high watermark) of each partition, as a Fetch response reports it.

    Not from ListOffsets(latest), `AIOKafkaConsumer.end_offsets`: the embedded tansu 0.6 broker
    (S3 storage) answers that with the base offset + 1 of the record batch whose object was
    modified last, at the store's one-second resolution and the first listed on a tie. That is
    right only when the newest batch holds one record and no two batches share a second; with
    producer-sized batches 400 records read as 329 to 382, or 1 per partition when every batch
    landed in one second, and a group that had read everything showed negative lag. Its Fetch
    responses carry the partition's real watermark (kept apart from the batch objects, right
    after a restart too). On Apache Kafka both answers are the same number, the high watermark,
    so this is Kafka's lag either way.

    A fresh consumer outside any group fetches each partition once (at offset 0; an offset out
    of range resets to the earliest) and reads the watermark off the response; it takes at most
    one small batch per partition, commits nothing, and need not decode it: a batch in a codec
    the client lacks must not hide the lag of the partition it blocks.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=1024,  # a whole first batch still comes back; the rest need not
        request_timeout_ms=10_000,
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while missing := [tp for tp in partitions if consumer.highwater(tp) is None]:
            if asyncio.get_running_loop().time() > deadline:
                raise KafkaTimeoutError(f"no fetch answer in {timeout_s:g} s for {missing}")
            # Records it cannot decode (a codec it lacks) raise, but the watermark came first.
            with contextlib.suppress(KafkaError):
                await consumer.getmany(*missing, timeout_ms=200)
        return {tp: consumer.highwater(tp) for tp in partitions}
    finally:
        await consumer.stop()


async def consumer_lag(kafka: KafkaSettings, group: str, topic: str) -> list[PartitionLag]:
    """Per partition of `topic`: the group's committed offset, the log end offset, the lag.

    Kafka semantics (end offset minus committed offset), with the end offset read as
    `log_end_offsets` explains, because the embedded broker's ListOffsets answer is wrong.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        partitions = sorted(
            (TopicPartition(topic, p["partition"]) for d in described for p in d["partitions"]),
            key=lambda tp: tp.partition,
        )
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    ends = await log_end_offsets(kafka.bootstrap, partitions)
    lags = []
    for tp in partitions:
        meta = committed.get(tp)
        offset = meta.offset if meta is not None and meta.offset >= 0 else None
        lags.append(PartitionLag(tp.partition, offset, ends[tp]))
    return lags
