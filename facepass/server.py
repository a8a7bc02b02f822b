"""One process, one or several services: the targets of `facepass serve` (as Loki's -target).

`all` runs ingest, the search API and the embedder in one process on one port (what `make run`
uses); each service can also run alone, so compose and Kubernetes scale them separately. The
same code builds every target: the services' routes are mounted on one Litestar app, the union
of their needs is opened once, and the Kafka broker starts after every subscriber is declared.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ControllerRouterHandler

from libs.common.http.access_log import access_logged
from libs.common.http.deps import RUNTIME_DEPENDENCIES
from libs.common.http.drain import body_drained
from libs.common.http.health import HealthController
from libs.common.http.problems import EXCEPTION_HANDLERS
from libs.common.http.ratelimit import rate_limit_headers_middleware
from libs.common.http.request_id import request_id_middleware
from libs.common.log import get_logger
from libs.common.runtime import Need, Runtime, open_runtime
from libs.common.service import ServiceSpec
from libs.common.settings import Settings
from libs.stack.process import port_is_open

log = get_logger(__name__)

#: Upload slack above the image byte cap: multipart boundaries and the id fields.
_FORM_OVERHEAD_BYTES = 64 * 1024


def _services() -> dict[str, ServiceSpec]:
    from services.embedder import SERVICE as EMBEDDER
    from services.ingest import SERVICE as INGEST
    from services.notifier import SERVICE as NOTIFIER
    from services.search_api import SERVICE as SEARCH_API

    return {spec.name: spec for spec in (INGEST, SEARCH_API, EMBEDDER, NOTIFIER)}


def targets() -> dict[str, tuple[str, ...]]:
    """Target name → the services it runs."""
    services = _services()
    named = {name: (name,) for name in services}
    return {**named, "all": tuple(services)}


class MetricsController(PrometheusController):
    path = "/api/v2/metrics"
    include_in_schema = False


async def _start_broker(runtime: Runtime, timeout_s: float = 60.0) -> None:
    broker = runtime.kafka()
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await broker.start()
            return
        except Exception as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("waiting for kafka", error=type(exc).__name__)
            with contextlib.suppress(Exception):
                await broker.stop()
            await asyncio.sleep(2)


def create_app(settings: Settings, target: str) -> Litestar:
    """The Litestar app of one target; resources open in its lifespan."""
    names = targets()[target]
    specs = [_services()[name] for name in names]
    needs: set[Need] = set().union(*(spec.needs for spec in specs))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_runtime(settings, needs) as runtime:
            app.state.runtime = runtime
            for spec in specs:
                for hook in spec.on_start:
                    await hook(runtime)
            if runtime.broker is not None:
                await _start_broker(runtime)
            jobs = [asyncio.create_task(run(runtime)) for spec in specs for run in spec.background]
            log.info("serving", target=target, services=list(names))
            if "ingest" in names and not settings.app.api_keys:
                log.warning(
                    "API_KEYS is empty: every keyed route (index, status, erase) answers 401"
                )
            try:
                yield
            finally:
                for job in jobs:
                    job.cancel()
                if runtime.broker is not None:
                    # Finishes (or abandons, uncommitted) the in-flight batch; leaves the group.
                    await runtime.broker.stop()

    prometheus = PrometheusConfig(app_name="facepass", prefix="facepass", group_path=True)
    cors = settings.app.cors_origins
    app = Litestar(
        route_handlers=[HealthController, MetricsController, *_routes(specs)],
        lifespan=[lifespan],
        dependencies=RUNTIME_DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            request_id_middleware,
            rate_limit_headers_middleware,
            prometheus.middleware,
        ],
        cors_config=CORSConfig(allow_origins=cors, allow_headers=["X-API-Key", "Content-Type"])
        if cors
        else None,
        openapi_config=_openapi(settings),
        request_max_body_size=upload_cap(settings),
        state=State({"targets": list(names)}),
        debug=False,
        logging_config=None,
    )
    return app


def upload_cap(settings: Settings) -> int:
    """The largest request body read: the image byte cap and the form around it."""
    return settings.face.max_image_bytes + _FORM_OVERHEAD_BYTES


def _routes(specs: Sequence[ServiceSpec]) -> list[ControllerRouterHandler]:
    return [route for spec in specs for route in spec.routes]


def _openapi(settings: Settings) -> OpenAPIConfig:
    return OpenAPIConfig(
        title=f"{settings.app.app_name} API",
        version=settings.app.app_version,
        description=(
            "Face search for event photography. Photos are indexed per session; a selfie "
            "search returns the session's photos the person appears in. Errors are "
            "application/problem+json with a stable `type`."
        ),
        path="/docs",
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(
                    type="apiKey", name="X-API-Key", security_scheme_in="header"
                )
            }
        ),
    )


class PortInUseError(RuntimeError):
    """FACEPASS_PORT is taken by another process."""


def check_http_port(settings: Settings) -> None:
    host, port = settings.http.host, settings.http.port
    if port_is_open("127.0.0.1" if host in ("0.0.0.0", "::") else host, port):
        raise PortInUseError(
            f"port {port} (FACEPASS_PORT) on {host} is already in use by another process"
        )


async def serve(settings: Settings, target: str) -> None:
    """Serve `target` on FACEPASS_HOST:FACEPASS_PORT until SIGINT/SIGTERM."""
    app = create_app(settings, target)
    config = uvicorn.Config(
        access_logged(body_drained(app, upload_cap(settings)), settings),
        host=settings.http.host,
        port=settings.http.port,
        log_config=None,
        access_log=False,  # ours is libs/common/http/access_log.py: JSON, route, key id
        # uvicorn would otherwise rewrite the client address from X-Forwarded-For for any
        # loopback peer before the app sees it; only TRUSTED_PROXIES decides whom to believe.
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    await server.serve()
    if not server.started:
        raise SystemExit(1)
