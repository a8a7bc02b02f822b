"""How HTTP code reaches the process's `Runtime`: one provider, one place that reads app state.

Route handlers declare a `runtime: Runtime` parameter (Litestar injects it by name, see
`RUNTIME_DEPENDENCIES`); guards and middleware, which get a connection instead, call
`runtime_of(connection)`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Provide

from libs.common.runtime import Runtime


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    """The runtime the app's lifespan opened (set before the first request is served)."""
    runtime: Runtime = connection.app.state.runtime
    return runtime


def has_runtime(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """False while no lifespan has run (e.g. a page served by a test app without one)."""
    return getattr(connection.app.state, "runtime", None) is not None


def _provide_runtime(request: Request[Any, Any, Any]) -> Runtime:
    return runtime_of(request)


RUNTIME_DEPENDENCIES = {"runtime": Provide(_provide_runtime, sync_to_thread=False)}
