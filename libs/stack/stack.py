"""The embedded stack: which servers to run, in what order, and how to stop them.

A dependency is served by an embedded server when its host setting is loopback and
FACEPASS_EMBEDDED is `auto`; pointing POSTGRES_HOST / KAFKA_BOOTSTRAP / REDIS_HOST / S3_ENDPOINT
at another host starts nothing for it. Servers start in dependency order (the broker keeps its
log on the S3 server) and stop in reverse. A server already running from the same state
directory is reused and left running on stop; only what this stack started is stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass
class _Running:
    server: EmbeddedServer
    process: ManagedProcess
    owned: bool


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

    def stop(self) -> None:
        """Stop, in reverse start order, every server this stack started."""
        while self._running:
            running = self._running.pop()
            if running.owned:
                log.info("stopping server", server=running.server.name)
                running.process.stop()

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
