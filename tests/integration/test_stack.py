"""The embedded stack: every server answers, data survives a restart, ports are checked."""

from __future__ import annotations

import contextlib
import socket
import uuid

import psycopg
import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from botocore.session import get_session

from libs.common.kafka import ensure_topics
from libs.common.settings import Settings
from libs.common.storage import client_kwargs
from libs.stack.process import StackError
from libs.stack.stack import EmbeddedStack
from tests.support.stack import stack_settings


def _pg(settings: Settings) -> psycopg.Connection:
    pg = settings.postgres
    return psycopg.connect(
        host=pg.host,
        port=pg.port,
        user=pg.user,
        password=pg.password.get_secret_value(),
        dbname=pg.db,
        autocommit=True,
    )


def _s3(settings: Settings):  # type: ignore[no-untyped-def]
    return get_session().create_client("s3", **client_kwargs(settings.s3))


def test_postgres_answers_with_pgvector_over_tcp_with_password(stack: Settings) -> None:
    with _pg(stack) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        ext = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        distance = conn.execute("SELECT '[1,0]'::vector <=> '[0,1]'::vector").fetchone()[0]
    assert version.startswith("18.")
    assert ext is not None
    assert distance == pytest.approx(1.0)


def test_postgres_rejects_a_wrong_password(stack: Settings) -> None:
    pg = stack.postgres
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host=pg.host, port=pg.port, user=pg.user, password="wrong", dbname=pg.db)


def test_s3_stores_and_returns_an_object(stack: Settings) -> None:
    client = _s3(stack)
    key = f"probe/{uuid.uuid4().hex}"
    client.put_object(Bucket=stack.s3.bucket, Key=key, Body=b"hello")
    body = client.get_object(Bucket=stack.s3.bucket, Key=key)["Body"].read()
    client.close()
    assert body == b"hello"


def test_valkey_answers(stack: Settings) -> None:
    client = redis.Redis(host=stack.redis.host, port=stack.redis.port)
    client.set("probe", "1", ex=10)
    assert client.get("probe") == b"1"
    client.close()


async def test_topics_are_created_with_their_partition_counts(stack: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    await admin.start()
    try:
        topics = [stack.kafka.topic_uploaded, stack.kafka.topic_indexed, stack.kafka.topic_dlq]
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    counts = {t["topic"]: len(t["partitions"]) for t in described}
    assert counts[stack.kafka.topic_uploaded] == stack.kafka.partitions
    assert counts[stack.kafka.topic_indexed] >= 1
    assert counts[stack.kafka.topic_dlq] >= 1


async def _produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


async def _consume_and_commit(
    settings: Settings, topic: str, group: str, count: int
) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        while len(got) < count:
            batch = await consumer.getmany(timeout_ms=10_000, max_records=count - len(got))
            if not batch:
                break
            for records in batch.values():
                got.extend(r.value for r in records)
        await consumer.commit()
        return got
    finally:
        await consumer.stop()


async def _committed(settings: Settings, topic: str, group: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=group)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()


async def test_restart_keeps_kafka_offsets_db_rows_and_s3_objects(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`facepass up` → stop → `facepass up` on the same state directory finds the same data."""
    settings = stack_settings(tmp_path / "state")
    topic, group = "restart.probe.v1", "restart-probe"
    first = EmbeddedStack(settings)
    first.start()
    try:
        await ensure_topics(settings.kafka, {topic: 1})
        await _produce(settings, topic, [b"one", b"two", b"three"])
        assert await _consume_and_commit(settings, topic, group, 2) == [b"one", b"two"]
        with _pg(settings) as conn:
            conn.execute("CREATE TABLE survivor (note text)")
            conn.execute("INSERT INTO survivor VALUES ('still here')")
        from libs.common.storage import ensure_buckets_sync

        ensure_buckets_sync(settings.s3, [settings.s3.bucket])
        client = _s3(settings)
        client.put_object(Bucket=settings.s3.bucket, Key="keep/me", Body=b"kept")
        client.close()
    finally:
        first.stop()

    second = EmbeddedStack(settings)
    second.start()
    try:
        # Readable as soon as start() returns (the gateway used to answer before its volumes
        # were registered, and reads of existing objects failed with 500).
        client = _s3(settings)
        body = client.get_object(Bucket=settings.s3.bucket, Key="keep/me")["Body"].read()
        client.close()
        assert body == b"kept"
        assert await _committed(settings, topic, group) == 2
        # The group resumes after the committed offset: the third record, not the first.
        assert await _consume_and_commit(settings, topic, group, 1) == [b"three"]
        with _pg(settings) as conn:
            assert conn.execute("SELECT note FROM survivor").fetchall() == [("still here",)]
    finally:
        second.stop()


def test_a_busy_port_gives_an_error_naming_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = stack_settings(tmp_path / "state")
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", settings.redis.port))
    blocker.listen()
    stack = EmbeddedStack(settings)
    try:
        with pytest.raises(StackError, match=rf"port {settings.redis.port} \(REDIS_PORT\)"):
            stack.start()
    finally:
        blocker.close()
        stack.stop()
    # Whatever had started before the failure was stopped again.
    with contextlib.closing(socket.socket()) as probe:
        assert probe.connect_ex(("127.0.0.1", settings.postgres.port)) != 0


def test_external_hosts_start_no_embedded_server(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from libs.common.settings import KafkaSettings, PostgresSettings, RedisSettings, S3Settings
    from libs.stack.stack import embedded_servers

    base = stack_settings(tmp_path / "state")
    external = base.model_copy(
        update={
            "postgres": PostgresSettings(host="db.internal"),
            "redis": RedisSettings(host="cache.internal"),
            "s3": S3Settings(endpoint="https://s3.example.com"),
            "kafka": KafkaSettings(bootstrap="kafka-1.internal:9092"),
        }
    )
    assert embedded_servers(external) == []
    only_pg_external = base.model_copy(update={"postgres": PostgresSettings(host="10.0.0.5")})
    assert [s.name for s in embedded_servers(only_pg_external)] == ["s3", "valkey", "kafka"]
