"""`GET /api/v2/health`: readiness with one line per dependency; `/api/v2/health/live`: liveness.

Readiness checks exactly what this process uses (its runtime's needs), concurrently, each with a
short timeout, and answers 503 naming what is down, so a load balancer stops sending traffic to
a process that cannot serve it. Redis is the exception: without it searches still work (no
cache, rate limits let requests through), so Redis down is "degraded", still 200, and named.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency

from libs.common.metrics import DEPENDENCY_UP
from libs.common.runtime import Need, Runtime

CHECK_TIMEOUT_S = 2.0
#: Dependencies whose loss degrades the service without stopping it.
OPTIONAL = frozenset({Need.REDIS})


def _checks(runtime: Runtime) -> dict[str, Callable[[], Awaitable[Any]]]:
    checks: dict[str, Callable[[], Awaitable[Any]]] = {}
    if runtime.db is not None:
        checks[Need.DB] = lambda: runtime.pool().fetchval("SELECT 1")
    if runtime.store is not None:
        checks[Need.S3] = runtime.objects().ping
    if runtime.redis is not None:
        checks[Need.REDIS] = runtime.cache().ping
    if runtime.broker is not None:
        broker = runtime.kafka()

        async def kafka_ping() -> None:
            if not await broker.ping(timeout=CHECK_TIMEOUT_S):
                raise ConnectionError("broker did not answer")

        checks[Need.KAFKA] = kafka_ping
    return checks


async def _run(check: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except Exception as exc:  # a health check reports every failure, never raises
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "latency_ms": round((time.perf_counter() - start) * 1000, 1)}


async def readiness(runtime: Runtime) -> tuple[bool, dict[str, Any]]:
    checks = _checks(runtime)
    results = await asyncio.gather(*(_run(check) for check in checks.values()))
    report = dict(zip(checks, results, strict=True))
    if Need.ENGINE in runtime.needs:
        report[Need.ENGINE] = {
            "status": "up" if runtime.engine is not None else "down",
            **({"model_id": runtime.engine.pack.id} if runtime.engine is not None else {}),
        }
    for name, result in report.items():
        DEPENDENCY_UP.labels(dependency=name).set(1 if result["status"] == "up" else 0)
    ok = all(r["status"] == "up" for name, r in report.items() if name not in OPTIONAL)
    return ok, report


class HealthController(Controller):
    path = "/api/v2/health"
    tags = ["operations"]

    @get("/", summary="Readiness: every dependency of this process", cache=False)
    async def health(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
    ) -> Response[dict[str, Any]]:
        ok, report = await readiness(runtime)
        settings = runtime.settings.app
        down = sorted(name for name, r in report.items() if r["status"] != "up")
        body = {
            "status": "unavailable" if not ok else ("degraded" if down else "ok"),
            "service": settings.app_name,
            "version": settings.app_version,
            "targets": sorted(request.app.state.targets),
            "dependencies": report,
        }
        if down:
            body["down"] = down
        return Response(body, status_code=200 if ok else 503)

    @get("/live", summary="Liveness: the process answers", cache=False)
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}
