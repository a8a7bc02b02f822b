"""The embedded stack: which servers to run, in what order, and how to stop them.

A dependency is served by an embedded server when its host setting is loopback and
FACEPASS_EMBEDDED is `auto`; pointing POSTGRES_HOST / KAFKA_BOOTSTRAP / REDIS_HOST / S3_ENDPOINT
at another host starts nothing for it. Servers start in dependency order (the broker keeps its
log on the S3 server) and stop in reverse. A server already running from the same state
directory is reused and left running on stop; only what this stack started is stopped.

`facepass up` also supervises what it started (`supervise`): a server of ours that exits is
reaped and started again, with a backoff, until it fails too often in a row; then the stack
gives up and says why (`failure`).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from libs.common.log import get_logger
from libs.common.settings import Settings, is_loopback
from libs.stack.process import ManagedProcess, StackError, port_is_open, wait_until
from libs.stack.servers import (
    LOOPBACK,
    EmbeddedServer,
    KafkaServer,
    PostgresServer,
    S3Server,
    ValkeyServer,
)

log = get_logger(__name__)

#: How often the supervisor looks for servers of ours that have exited.
_POLL_S = 1.0
#: A server that exits sooner than this after it was ready counts as a failed start.
_STABLE_S = 60.0
#: Failed starts in a row after which the supervisor gives up on a server.
_MAX_FAILURES = 5


@dataclass
class _Running:
    server: EmbeddedServer
    process: ManagedProcess
    owned: bool
    started_at: float = field(default_factory=time.monotonic)
    #: Failed starts in a row: starts that did not get ready, or exits within _STABLE_S.
    failures: int = 0


def embedded_servers(settings: Settings) -> list[EmbeddedServer]:
    """The servers `facepass up` must start for these settings, in start order."""
    if settings.stack.embedded == "none":
        return []
    state_dir = settings.stack.state_dir.resolve()
    wanted: list[EmbeddedServer] = []
    if is_loopback(settings.postgres.host):
        wanted.append(PostgresServer(settings, state_dir))
    if is_loopback(settings.s3.host):
        wanted.append(S3Server(settings, state_dir))
    if is_loopback(settings.redis.host):
        wanted.append(ValkeyServer(settings, state_dir))
    if is_loopback(settings.kafka.first_host):
        wanted.append(KafkaServer(settings, state_dir))
    return wanted


class EmbeddedStack:
    """Start, reuse and stop the embedded servers for one state directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.servers = embedded_servers(settings)
        self._running: list[_Running] = []
        #: Why supervision gave up on a server, once it has.
        self.failure: str | None = None
        # Held while servers start or stop, so a restart and stop() never interleave.
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        try:
            for server in self.servers:
                self._running.append(self._start_one(server))
        except BaseException:
            self.stop()
            raise

    def _start_one(self, server: EmbeddedServer) -> _Running:
        timeout = self.settings.stack.start_timeout_s
        process = server.process()
        if process.running_pid() is not None:
            wait_until(server.is_ready, timeout=timeout, what=f"running {server.name}")
            server.after_start()
            log.info("reusing server", server=server.name, listen=server.describe())
            return _Running(server, process, owned=False)
        self._check_ports_free(server)
        server.prepare()
        pid = process.start()
        log.info("starting server", server=server.name, pid=pid)

        def ready() -> bool:
            if self._stopping.is_set():
                raise StackError(f"{server.name} start abandoned: the stack is stopping")
            failure = process.exited_early()
            if failure:
                raise StackError(f"{server.name} {failure}")
            return server.is_ready()

        try:
            wait_until(ready, timeout=timeout, what=server.name)
            server.after_start()
        except BaseException:
            process.stop()
            raise
        return _Running(server, process, owned=True)

    @staticmethod
    def _check_ports_free(server: EmbeddedServer) -> None:
        ports = {server.port: server.port_setting, **server.extra_ports()}
        for port, origin in ports.items():
            if port_is_open(LOOPBACK, port):
                raise StackError(
                    f"port {port} ({origin}) for the embedded {server.name} is already in use "
                    f"by another process: stop it, choose another port, or point the setting "
                    f"at that server if it is the one to use"
                )

    def supervise(self, on_give_up: Callable[[], None]) -> None:
        """Restart, until `stop`, each server this stack started that exits.

        Restarts wait 0, 1, 2, 4, 8 s after 0-4 failed starts in a row; after the fifth the
        supervisor sets `failure` and calls `on_give_up` (from its own thread). A server that
        another stack has started meanwhile is reused instead.
        """
        # In a copy of this context: its log lines carry what is bound here (the service).
        context = contextvars.copy_context()
        self._supervisor = threading.Thread(
            target=context.run,
            args=(self._supervise, on_give_up),
            name="stack-supervisor",
            daemon=True,
        )
        self._supervisor.start()

    def _supervise(self, on_give_up: Callable[[], None]) -> None:
        while not self._stopping.wait(_POLL_S):
            if not all(self._restart(running) for running in self._exited()):
                on_give_up()
                break
        # The servers restarted from this thread get their parent-death signal when it ends
        # (process.py): it must outlive stop()'s orderly, reverse-order stop of them.
        self._stopped.wait()

    def _exited(self) -> list[_Running]:
        """Servers of ours that have exited (asking reaps them)."""
        with self._lock:
            return [r for r in self._running if r.owned and r.process.exit_code() is not None]

    def _restart(self, running: _Running) -> bool:
        """Start an exited server of ours again; False when giving up on it."""
        if self._stopping.is_set():
            return True
        name = running.server.name
        last = f"{name} {running.process.exited_early()}"
        quick = time.monotonic() - running.started_at < _STABLE_S
        running.failures = running.failures + 1 if quick else 0
        log.warning(
            "server exited; restarting",
            server=name,
            code=running.process.exit_code(),
            failures=running.failures,
        )
        while running.failures < _MAX_FAILURES:
            if self._stopping.wait(2 ** (running.failures - 1) if running.failures else 0):
                return True
            try:
                with self._lock:
                    if self._stopping.is_set():
                        return True
                    fresh = self._start_one(running.server)
                    running.process, running.owned = fresh.process, fresh.owned
                    running.started_at = fresh.started_at
                return True
            except Exception as exc:  # the thread must live on: its servers die with it
                last = str(exc)
                running.failures += 1
                log.warning(
                    "server restart failed", server=name, failures=running.failures, error=last
                )
        self.failure = (
            f"{name} could not be kept running ({_MAX_FAILURES} failed starts in a row, "
            f"each failing or exiting within {_STABLE_S:.0f} s); the last: {last}"
        )
        log.error("giving up on server", server=name, failures=running.failures)
        return False

    def stop(self) -> None:
        """Stop, in reverse start order, every server this stack started; end supervision."""
        self._stopping.set()
        with self._lock:
            while self._running:
                running = self._running.pop()
                if running.owned:
                    log.info("stopping server", server=running.server.name)
                    running.process.stop()
        self._stopped.set()
        if self._supervisor is not None:
            self._supervisor.join()

    def banner(self) -> list[str]:
        """One line per dependency: where it is and whether it is embedded."""
        lines = [f"  {r.server.name:<9} {r.server.describe()}" for r in self._running]
        embedded = {r.server.name for r in self._running}
        s = self.settings
        external = {
            "postgres": f"{s.postgres.host}:{s.postgres.port}/{s.postgres.db}",
            "s3": s.s3.endpoint,
            "valkey": f"{s.redis.host}:{s.redis.port}",
            "kafka": s.kafka.bootstrap,
        }
        lines += [
            f"  {n:<9} {where} (external)" for n, where in external.items() if n not in embedded
        ]
        return lines

    @property
    def state_dir(self) -> Path:
        return self.settings.stack.state_dir.resolve()
