"""Publishing that fails fast while the Kafka broker is known to be down.

A publish to a broker that is down waits out the producer's request timeout (10 s) before it
fails, so while the broker was down every upload held its connection for 10 s before its 503.
After one publish has failed, the gate asks the broker whether it is back (a cluster
description, bounded by `probe_timeout_s`) before the next publish, and at most once per
`probe_interval_s`; between probes, publishes are refused at once. The first publish after the
broker answers again goes through, and a publish that succeeds clears the mark. A publish that
failed for another reason (a broker that is up) costs the next one a single probe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaError
from faststream.kafka import KafkaBroker


class BrokerGate:
    """`publish` through `broker`, refusing at once while the broker is known down."""

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        probe_timeout_s: float = 1.0,
        probe_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker = broker
        self.probe_timeout_s = probe_timeout_s
        self.probe_interval_s = probe_interval_s
        self._clock = clock
        self._down = False
        self._last_probe = float("-inf")

    @property
    def known_down(self) -> bool:
        return self._down

    async def publish(self, message: Any, **options: Any) -> None:
        """`KafkaBroker.publish(message, **options)`; raises KafkaConnectionError (answered as
        503 kafka) without waiting while the broker is known down and not yet back."""
        if self._down:
            await self._probe()
        try:
            await self.broker.publish(message, **options)
        except KafkaError:
            self._down = True
            self._last_probe = self._clock()  # the failed publish was as good as a probe
            raise
        self._down = False

    async def _probe(self) -> None:
        now = self._clock()
        if now - self._last_probe < self.probe_interval_s:
            raise KafkaConnectionError("the broker is down (a publish failed just now)")
        self._last_probe = now
        if not await self.broker.ping(timeout=self.probe_timeout_s):
            raise KafkaConnectionError(
                f"the broker is down (no answer in {self.probe_timeout_s:g} s)"
            )
