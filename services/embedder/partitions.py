"""What the group coordinator gave this embedder: logged and exported on every rebalance.

An operator scaling the group (or a test waiting for two replicas to share the work) needs to
see which partitions each replica holds, not only that it is up: a replica is healthy before it
has joined the group, and one beyond the partition count stays idle by design.
"""

from __future__ import annotations

from aiokafka import ConsumerRebalanceListener, TopicPartition

from libs.common.log import get_logger
from libs.common.metrics import ASSIGNED_PARTITIONS

log = get_logger(__name__)


def _names(partitions: set[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)


class PartitionLog(ConsumerRebalanceListener):  # type: ignore[misc]
    """Logs `partitions assigned` / `partitions revoked` and keeps the assigned-partitions gauge."""

    def __init__(self) -> None:
        self.held: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.held -= revoked
        ASSIGNED_PARTITIONS.set(len(self.held))
        if revoked:
            log.info("partitions revoked", partitions=_names(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.held = set(assigned)
        ASSIGNED_PARTITIONS.set(len(self.held))
        log.info("partitions assigned", partitions=_names(self.held), count=len(self.held))
