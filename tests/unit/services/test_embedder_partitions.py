"""The embedder's rebalance listener: what it logs and exports is what operators and the
integration tests read to know a replica holds work."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka import TopicPartition

from libs.common.log import configure_logging
from libs.common.metrics import ASSIGNED_PARTITIONS
from services.embedder.partitions import PartitionLog
from tests.support.kafka import partitions_held


def _gauge() -> float:
    return ASSIGNED_PARTITIONS._value.get()  # type: ignore[attr-defined,no-any-return]


def test_a_rebalance_is_logged_and_the_gauge_follows_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("embedder")
    listener = PartitionLog()
    first = {TopicPartition("up", 0), TopicPartition("up", 1), TopicPartition("up", 2)}

    asyncio.run(listener.on_partitions_assigned(first))
    assert _gauge() == 3
    asyncio.run(listener.on_partitions_revoked(first))
    assert _gauge() == 0
    asyncio.run(listener.on_partitions_assigned({TopicPartition("up", 1)}))
    assert _gauge() == 1

    log = capsys.readouterr().err
    lines = [json.loads(line) for line in log.strip().splitlines()]
    assert [(line["event"], line["partitions"]) for line in lines] == [
        ("partitions assigned", ["up/0", "up/1", "up/2"]),
        ("partitions revoked", ["up/0", "up/1", "up/2"]),
        ("partitions assigned", ["up/1"]),
    ]
    assert partitions_held(log) == 1


def test_a_replica_left_without_partitions_reads_as_idle(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("embedder")
    listener = PartitionLog()
    asyncio.run(listener.on_partitions_assigned({TopicPartition("up", 0)}))
    asyncio.run(listener.on_partitions_revoked({TopicPartition("up", 0)}))
    asyncio.run(listener.on_partitions_revoked(set()))  # nothing held: nothing to say
    asyncio.run(listener.on_partitions_assigned(set()))
    log = capsys.readouterr().err
    assert log.count('"partitions revoked"') == 1
    assert partitions_held(log) == 0 and _gauge() == 0
