"""The long-lived resources of one FacePass process, opened once and shared by its services.

A process running several targets (the `all` mode) opens each resource once: one database pool,
one S3 client, one Kafka broker, one Redis client, one face engine and one inference thread
pool, whatever the number of services using them. Each service declares what it needs; the
process opens the union.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import asyncpg
from faststream.kafka import KafkaBroker
from redis.asyncio import BlockingConnectionPool, Redis

from libs.common.broker_gate import BrokerGate
from libs.common.cpu import cpu_cores
from libs.common.db.pool import create_pool
from libs.common.face.engine import FaceEngine
from libs.common.log import get_logger
from libs.common.settings import FaceSettings, Settings
from libs.common.storage import ObjectStore

log = get_logger(__name__)
T = TypeVar("T")

#: Redis connections per process, and how long a request waits for a free one.
REDIS_MAX_CONNECTIONS = 64
REDIS_POOL_WAIT_S = 5.0


class Need(StrEnum):
    """A resource a service can ask for."""

    DB = "postgres"
    S3 = "s3"
    KAFKA = "kafka"
    REDIS = "redis"
    ENGINE = "model"


class DependencyUnavailableError(ConnectionError):
    """A server the request needs is down; HTTP answers 503 with Retry-After."""

    def __init__(self, dependency: str, detail: str = "") -> None:
        super().__init__(f"{dependency} unavailable{': ' + detail if detail else ''}")
        self.dependency = dependency


def create_broker(settings: Settings) -> KafkaBroker:
    """A FastStream Kafka broker for the KAFKA_* settings (publishing and subscribing)."""
    return KafkaBroker(
        settings.kafka.bootstrap,
        enable_idempotence=settings.kafka.enable_idempotence,
        acks="all",
        client_id=f"facepass-{settings.app.app_version}",
        request_timeout_ms=10_000,
        graceful_timeout=30.0,
        logger=None,
    )


@dataclass
class Runtime:
    """Handles to the servers and models one process uses. Absent ones are None."""

    settings: Settings
    needs: frozenset[Need]
    db: asyncpg.Pool | None = None
    store: ObjectStore | None = None
    broker: KafkaBroker | None = None
    broker_gate: BrokerGate | None = None
    redis: Redis | None = None
    engine: FaceEngine | None = None
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(thread_name_prefix="facepass-cpu")
    )
    #: Threads that run the face engine on photos: FACE_INFERENCE_WORKERS (set by open_runtime).
    inference_workers: int = 1
    #: Objects a service keeps for the life of the process, by name (e.g. the search API's
    #: in-memory session matrices); set by the service's on_start hooks.
    extensions: dict[str, Any] = field(default_factory=dict)
    _inference: ThreadPoolExecutor | None = field(default=None, repr=False)

    def pool(self) -> asyncpg.Pool:
        if self.db is None:
            raise DependencyUnavailableError(Need.DB, "no database pool in this process")
        return self.db

    def objects(self) -> ObjectStore:
        if self.store is None:
            raise DependencyUnavailableError(Need.S3, "no S3 client in this process")
        return self.store

    def kafka(self) -> KafkaBroker:
        if self.broker is None:
            raise DependencyUnavailableError(Need.KAFKA, "no Kafka broker in this process")
        return self.broker

    async def publish(self, message: Any, **options: Any) -> None:
        """Publish through the broker, refused at once while it is known down (BrokerGate),
        instead of each request waiting out the producer's timeout."""
        if self.broker_gate is None:
            raise DependencyUnavailableError(Need.KAFKA, "no Kafka broker in this process")
        await self.broker_gate.publish(message, **options)

    def cache(self) -> Redis:
        if self.redis is None:
            raise DependencyUnavailableError(Need.REDIS, "no Redis client in this process")
        return self.redis

    def face_engine(self) -> FaceEngine:
        if self.engine is None:
            raise DependencyUnavailableError(Need.ENGINE, "no face engine in this process")
        return self.engine

    async def run_inference(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the face engine on photos, at most `inference_workers` at once, on threads of
        their own, so that decoding and selfies in the CPU pool never wait behind them."""
        if self._inference is None:
            self._inference = ThreadPoolExecutor(
                self.inference_workers, thread_name_prefix="facepass-inference"
            )
        return await asyncio.get_running_loop().run_in_executor(self._inference, fn, *args)

    def close_pools(self) -> None:
        for pool in (self.executor, self._inference):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    async def run_cpu(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound work (decoding, inference) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)


def inference_workers(face: FaceSettings, engine: FaceEngine) -> int:
    """FACE_INFERENCE_WORKERS, or its default: one per core on a CPU, one on a GPU (where one
    batch across photos keeps the device busy)."""
    if face.inference_workers:
        return face.inference_workers
    on_gpu = any(p != "CPUExecutionProvider" and "CPU" not in p for p in engine.providers())
    return 1 if on_gpu else cpu_cores()


async def _retry(what: str, attempt: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    """Call `attempt` until it succeeds or `timeout_s` passes (servers may still be starting)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.5
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("waiting for dependency", dependency=what, error=type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


@asynccontextmanager
async def open_runtime(
    settings: Settings, needs: set[Need], *, connect_timeout_s: float = 60.0
) -> AsyncIterator[Runtime]:
    """Open what `needs` asks for; close everything on exit (broker first, pools last)."""
    runtime = Runtime(settings=settings, needs=frozenset(needs))
    async with AsyncExitStack() as stack:
        stack.callback(runtime.close_pools)
        if Need.ENGINE in needs:
            engine = FaceEngine.from_settings(settings.face)
            await runtime.run_cpu(engine.load)
            runtime.engine = engine
            runtime.inference_workers = inference_workers(settings.face, engine)
        if Need.DB in needs:
            pool = await _retry(
                "postgres", lambda: create_pool(settings.postgres), connect_timeout_s
            )
            runtime.db = pool
            stack.push_async_callback(pool.close)
        if Need.S3 in needs:
            runtime.store = await ObjectStore(settings.s3).open()
            stack.push_async_callback(runtime.store.close)
        if Need.REDIS in needs:
            password = settings.redis.password
            # A blocking pool: under a burst (200 concurrent searches) the default pool raised
            # MaxConnectionsError at its 100th connection, and the rate limiter, which lets
            # requests through when Redis fails, stopped limiting exactly under load
            # (tests/reliability/test_load.py). Now a request waits for a free connection.
            redis_pool = BlockingConnectionPool(
                host=settings.redis.host,
                port=settings.redis.port,
                db=settings.redis.db,
                password=password.get_secret_value() if password else None,
                socket_timeout=2,
                socket_connect_timeout=2,
                max_connections=REDIS_MAX_CONNECTIONS,
                timeout=REDIS_POOL_WAIT_S,
            )
            runtime.redis = Redis.from_pool(redis_pool)
            stack.push_async_callback(runtime.redis.aclose)
        if Need.KAFKA in needs:
            runtime.broker = create_broker(settings)
            runtime.broker_gate = BrokerGate(runtime.broker)
            # The broker is started by the process once every subscriber is registered.
        yield runtime
