"""Kafka records as the embedder's work sees them: plain values, no broker objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from libs.common.events import SourceRecord


@dataclass(frozen=True)
class RawRecord:
    """One Kafka record as consumed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, bytes] = field(default_factory=dict)

    def source(self) -> SourceRecord:
        return SourceRecord(
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            key=self.key.decode("utf-8", "replace") if self.key is not None else None,
            value=self.value[:100_000].decode("utf-8", "replace"),
        )


def raw_records(consumed: Any) -> list[RawRecord]:
    """aiokafka ConsumerRecords (one, or a batch as a tuple or list) as RawRecords."""
    batch = consumed if isinstance(consumed, (tuple, list)) else (consumed,)
    return [
        RawRecord(
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            key=r.key,
            value=r.value or b"",
            headers={k: v for k, v in (r.headers or ())},
        )
        for r in batch
    ]
