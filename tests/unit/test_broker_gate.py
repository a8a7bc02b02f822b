"""BrokerGate without a broker: a stand-in whose publish and ping answer as a broker that is
up or down would, and a clock the test moves, so that what is asked of the broker and when is
visible. (tests/reliability/test_restarts.py stops the real broker under a running server.)"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from libs.common.broker_gate import BrokerGate


class Broker:
    """Records every publish and ping; `up` decides how they answer."""

    def __init__(self) -> None:
        self.up = True
        self.published: list[Any] = []
        self.pings = 0

    async def publish(self, message: Any, **options: Any) -> None:
        if not self.up:
            raise KafkaTimeoutError()  # what aiokafka raises after its request timeout
        self.published.append(message)

    async def ping(self, timeout: float | None) -> bool:  # noqa: ASYNC109 (the broker's API)
        self.pings += 1
        return self.up


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts() -> tuple[Broker, Clock, BrokerGate]:
    broker, clock = Broker(), Clock()
    return broker, clock, BrokerGate(broker, clock=clock)  # type: ignore[arg-type]


async def test_an_up_broker_is_never_probed(parts: tuple[Broker, Clock, BrokerGate]) -> None:
    broker, _, gate = parts
    for n in range(3):
        await gate.publish(n, topic="t")
    assert broker.published == [0, 1, 2] and broker.pings == 0
    assert not gate.known_down


async def test_after_a_failed_publish_the_next_ones_are_refused_without_publishing(
    parts: tuple[Broker, Clock, BrokerGate],
) -> None:
    broker, clock, gate = parts
    broker.up = False
    with pytest.raises(KafkaTimeoutError):
        await gate.publish("first", topic="t")  # waits out the producer's timeout
    assert gate.known_down
    with pytest.raises(KafkaConnectionError, match="failed just now"):
        await gate.publish("second", topic="t")  # within the probe interval: no broker call
    assert broker.pings == 0
    clock.now += 1.5
    with pytest.raises(KafkaConnectionError, match="no answer"):
        await gate.publish("third", topic="t")  # one bounded probe, then refused
    assert broker.pings == 1 and broker.published == []
    with pytest.raises(KafkaConnectionError):
        await gate.publish("fourth", topic="t")  # the probe just ran: refused at once
    assert broker.pings == 1


async def test_the_first_publish_after_the_broker_answers_goes_through(
    parts: tuple[Broker, Clock, BrokerGate],
) -> None:
    broker, clock, gate = parts
    broker.up = False
    with pytest.raises(KafkaTimeoutError):
        await gate.publish("lost", topic="t")
    broker.up = True
    clock.now += 1.5
    await gate.publish("back", topic="t")
    assert broker.published == ["back"] and broker.pings == 1
    assert not gate.known_down
    await gate.publish("next", topic="t")
    assert broker.pings == 1  # cleared: no more probes
