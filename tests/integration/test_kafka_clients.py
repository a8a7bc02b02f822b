"""The Kafka contract with a client that is not aiokafka: librdkafka (confluent-kafka), which
upstream photo systems use directly or under their Go, .NET and Python clients. An upstream
publishes photos.uploaded with librdkafka, the photo becomes searchable, and a librdkafka
consumer reads FacePass's photos.indexed events, valid against their schema
(tests/integration/test_embedder.py holds the aiokafka side of the same contract)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner
from botocore.session import get_session
from jsonschema import Draft202012Validator

from libs.common.settings import Settings
from libs.common.storage import client_kwargs
from tests.support.data import REPO, TOM_HANKS, jpeg_bytes
from tests.support.kafka import rdkafka_publish, rdkafka_read_json
from tests.support.processes import ServerProcess

SCHEMAS = REPO / "schemas"

#: What an upstream on librdkafka would set: acks from every replica, the idempotent producer,
#: and Java's murmur2 partitioner (librdkafka's default hashes keys differently), so one photo's
#: events share a partition with those FacePass's own ingest publishes.
UPSTREAM_PRODUCER = {
    "client.id": "pixora-uploader",
    "acks": "all",
    "enable.idempotence": True,
    "partitioner": "murmur2_random",
}


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _put(stack: Settings, key: str, data: bytes) -> None:
    client = get_session().create_client("s3", **client_kwargs(stack.s3))
    try:
        client.put_object(Bucket=stack.s3.bucket, Key=key, Body=data, ContentType="image/jpeg")
    finally:
        client.close()


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_a_librdkafka_upstream_photo_is_indexed_and_its_event_read_by_librdkafka(
    server: ServerProcess, stack: Settings, compression: str
) -> None:
    """Every codec librdkafka offers: before aiokafka's cramjam codecs were installed, an lz4,
    snappy or zstd batch raised UnsupportedCodecError in the embedder and was never indexed."""
    photo, session = f"rdk-{uuid.uuid4().hex[:10]}", f"rdk-sess-{uuid.uuid4().hex[:8]}"
    key = f"upstream/{photo}.jpg"
    _put(stack, key, jpeg_bytes(TOM_HANKS))
    event: dict[str, Any] = {
        "photo_id": photo,
        "session_id": session,
        "object": {"bucket": stack.s3.bucket, "key": key},
        "content_type": "image/jpeg",
        "uploaded_at": datetime.now(UTC).isoformat(),
        "source": "pixora",
    }
    assert list(_validator("photos.uploaded.v1.schema.json").iter_errors(event)) == []

    delivered = rdkafka_publish(
        stack.kafka.bootstrap,
        stack.kafka.topic_uploaded,
        [(photo.encode(), json.dumps(event).encode())],
        {**UPSTREAM_PRODUCER, "compression.type": compression},
    )
    partitions = list(range(stack.kafka.partitions))
    partition, _ = delivered[photo.encode()]
    assert partition == DefaultPartitioner()(photo.encode(), partitions, partitions)

    def done(pairs: list[tuple[bytes | None, dict[str, Any]]]) -> bool:
        return any(value.get("photo_id") == photo for _, value in pairs)

    pairs = rdkafka_read_json(stack.kafka.bootstrap, stack.kafka.topic_indexed, until=done)
    assert done(pairs), f"no indexed event for {photo} among {len(pairs)}"
    indexed = _validator("photos.indexed.v1.schema.json")
    for _, value in pairs:  # every event on the topic, not only this test's
        assert list(indexed.iter_errors(value)) == [], value
    ours = [(k, v) for k, v in pairs if v.get("photo_id") == photo]
    assert [k for k, _ in ours] == [photo.encode()]  # keyed by photo_id, as docs/events.md says
    assert ours[0][1]["session_id"] == session and ours[0][1]["faces_indexed"] == 1

    found = httpx.post(
        f"{server.base_url}/api/v2/search",
        data={"session_id": session},
        files={"file": ("selfie.jpg", jpeg_bytes(TOM_HANKS, scale=0.8), "image/jpeg")},
        timeout=30,
    )
    assert found.status_code == 200, found.text
    assert [r["photo_id"] for r in found.json()["results"]] == [photo]
