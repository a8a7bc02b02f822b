"""What a FacePass service contributes to a process: the resources it needs, its HTTP routes,
and hooks run at start (register Kafka subscribers) and in the background (periodic jobs).

The process (see facepass/server.py) runs one or several services, opens the union of their
needs once, mounts all their routes on one Litestar app and starts the broker after every
subscriber is registered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from litestar.types import ControllerRouterHandler

from libs.common.runtime import Need, Runtime


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    needs: frozenset[Need]
    routes: Sequence[ControllerRouterHandler] = ()
    #: Called after resources open and before the broker starts (e.g. add subscribers).
    on_start: Sequence[Callable[[Runtime], Awaitable[None]]] = field(default_factory=tuple)
    #: Long-running jobs (e.g. retention), cancelled at shutdown.
    background: Sequence[Callable[[Runtime], Coroutine[Any, Any, None]]] = field(
        default_factory=tuple
    )
