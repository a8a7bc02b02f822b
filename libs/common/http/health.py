"""`GET /api/v2/health`: readiness with one line per dependency; `/api/v2/health/live`: liveness.

Readiness checks exactly what this process uses (its runtime's needs), concurrently, each with a
short timeout, and answers 503 naming what is down, so a load balancer stops sending traffic to
a process that cannot serve it. Redis is the exception: without it searches still work (no
cache, rate limits let requests through), so Redis down is "degraded", still 200, and named.

The 503 is a problem+json like every other FacePass error, with Retry-After, and the report
(service, version, targets, dependencies, down) as its extension members.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from libs.common.http.openapi import Problem, ProblemOperation
from libs.common.http.problems import PROBLEM_MEDIA_TYPE, RETRY_AFTER_S, problem
from libs.common.metrics import DEPENDENCY_UP
from libs.common.runtime import Need, Runtime
from libs.common.settings import AppSettings

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


@dataclass
class NotReady(Problem):
    """The 503 of readiness (documentation): the report as extension members."""

    service: str
    version: str
    targets: list[str]
    dependencies: dict[str, dict[str, Any]]
    down: list[str]


def health_answer(
    ok: bool, report: dict[str, Any], app: AppSettings, targets: list[str]
) -> Response[dict[str, Any]]:
    """200 `ok` or `degraded` (an optional dependency down, named), or the 503 problem."""
    down = sorted(name for name, r in report.items() if r["status"] != "up")
    facts = {
        "service": app.app_name,
        "version": app.app_version,
        "targets": sorted(targets),
        "dependencies": report,
    }
    if not ok:
        return problem(
            503,
            "not-ready",
            f"{', '.join(down)} unavailable; retry after Retry-After",
            headers={"Retry-After": str(RETRY_AFTER_S)},
            extra={**facts, "down": down},
        )
    body = {"status": "degraded" if down else "ok", **facts}
    if down:
        body["down"] = down
    return Response(body)


class HealthController(Controller):
    path = "/api/v2/health"
    tags = ["operations"]

    @get(
        "/",
        summary="Readiness: every dependency of this process",
        cache=False,
        responses={
            503: ResponseSpec(
                data_container=NotReady,
                description="Not ready: a dependency it needs is down (named in `down`); "
                "retry after Retry-After",
                media_type=PROBLEM_MEDIA_TYPE,
                generate_examples=False,
            )
        },
        operation_class=ProblemOperation,
    )
    async def health(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
    ) -> Response[dict[str, Any]]:
        ok, report = await readiness(runtime)
        return health_answer(ok, report, runtime.settings.app, request.app.state.targets)

    @get("/live", summary="Liveness: the process answers", cache=False)
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}
