"""Where the suites run: a private embedded stack (default) or the configured servers, and
`facepass serve` processes started by the bench with the settings each protocol needs.

The bench never measures a server someone else started: it always launches its own
`facepass serve --target ...` processes (on free ports, with a bench API key and the protocol's
limits), so every figure comes with the exact settings that produced it. The dependencies
(PostgreSQL, S3, Kafka, Valkey) are either a private embedded stack in a fresh state directory
under `.facepass/bench/` on free ports (reproducible: `python -m bench all` does this) or, with
`--configured`, the servers of the environment's settings (e.g. a running `facepass up`). Those
are made ready (migrations, bucket, the bench's topics) by `facepass init`, run the same way.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from libs.common.settings import SearchSettings, Settings, load_settings
from libs.stack.private import free_port, private_stack_settings, settings_env, wait_healthy

BENCH_STATE = Path(".facepass/bench")
API_KEY = "bench-api-key-0123456789abcdef"
FACEPASS = str(Path(sys.executable).parent / "facepass")
#: Settings every bench server gets: no limits in the way of throughput runs.
UNLIMITED = {"SEARCH_RATE_LIMIT_PER_MINUTE": "0", "RATE_LIMIT_API_KEY_PER_MINUTE": "0"}
#: The lowest threshold the A1 sweep asks for (SEARCH_MIN_THRESHOLD of the bench server).
SWEEP_FLOOR = 0.10
#: The shared `all` server of A1, P1 and P2: one inference thread per model session (the
#: shipped default, said explicitly), limits off, the sweep's floor allowed.
ALL_SERVER_ENV = {"FACE_INTRA_OP_THREADS": "1", "SEARCH_MIN_THRESHOLD": str(SWEEP_FLOOR)}
_TRUE = {"1", "true", "yes", "on"}


def sweep_top(env: Mapping[str, str]) -> float | None:
    """The highest threshold a client-side sweep of floor searches is exact for, on a server
    with `env` over the shipped defaults: with query expansion, its strict (lenders')
    threshold; None (no limit) without.

    With expansion an answer is the union of the first pass and a pass refined by the matches
    at the strict threshold. For a threshold t at or below it the lenders are the same whatever
    t is, so filtering one search at the floor at t gives exactly a search at t; above it a
    search lends at its own threshold, so the filtered answer would not be one."""
    defaults = SearchSettings.model_fields
    on = env.get("SEARCH_QUERY_EXPANSION")
    expands = defaults["query_expansion"].default if on is None else on.strip().lower() in _TRUE
    if not expands:
        return None
    return float(env.get("SEARCH_EXPANSION_THRESHOLD", defaults["expansion_threshold"].default))


def isolated(settings: Settings) -> Settings:
    """The same servers with the bench's own topics and consumer group, so no other embedder
    on these servers (a `facepass up`, the test suite's server) shares the bench's work."""
    kafka = settings.kafka.model_copy(
        update={
            "topic_uploaded": "facepass.bench.photos.uploaded.v1",
            "topic_indexed": "facepass.bench.photos.indexed.v1",
            "topic_dlq": "facepass.bench.photos.dlq.v1",
            "consumer_group": "facepass-bench-embedder",
        }
    )
    return settings.model_copy(update={"kafka": kafka})


@dataclass
class Server:
    """One `facepass serve` process of the bench."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    target: str

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout, headers={"X-API-Key": API_KEY})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Bench:
    """The servers of one bench run and how to start `facepass serve` processes on them."""

    settings: Settings
    log_dir: Path
    stack_pids: list[int] = field(default_factory=list)
    mode: str = "private"

    def env(self, **extra: str) -> dict[str, str]:
        defaults = {
            "FACEPASS_EMBEDDED": "none",
            "API_KEYS": API_KEY,
            "LOG_LEVEL": "WARNING",
            **UNLIMITED,
        }
        return settings_env(self.settings, **{**defaults, **extra})

    def prepare(self) -> None:
        """`facepass init` on these servers: migrations, the bucket, the bench's topics."""
        log_path = self.log_dir / "init.log"
        with log_path.open("wb") as log:
            done = subprocess.run(
                [FACEPASS, "init"], env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                timeout=300, check=False,
            )  # fmt: skip
        if done.returncode != 0:
            tail = log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"facepass init exited with {done.returncode}:\n{tail}")

    def _spawn(self, target: str, extra: dict[str, str]) -> Server:
        port = free_port()
        log_path = self.log_dir / f"serve-{target}-{port}.log"
        process = subprocess.Popen(
            [FACEPASS, "serve", "--target", target],
            env=self.env(FACEPASS_PORT=str(port), **extra),
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        return Server(process, f"http://127.0.0.1:{port}", log_path, target)

    def start_many(self, *specs: tuple[str, dict[str, str]]) -> list[Server]:
        """Start several `facepass serve --target T` processes at once; wait until all are
        healthy (model loading overlaps, which saves start-up time)."""
        servers: list[Server] = []
        try:
            for target, extra in specs:
                servers.append(self._spawn(target, extra))
            for server in servers:
                wait_healthy(server.base_url, server.process, server.log_path, timeout=180)
        except BaseException:
            for server in servers:
                server.stop()
            raise
        return servers

    def start(self, target: str = "all", **extra: str) -> Server:
        """Start `facepass serve --target TARGET` and wait until it is healthy."""
        return self.start_many((target, extra))[0]

    @contextmanager
    def serve(self, target: str = "all", **extra: str) -> Iterator[Server]:
        server = self.start(target, **extra)
        try:
            yield server
        finally:
            server.stop()

    def cpu_seconds(self, *pids: int, stack: bool = True) -> float:
        """User + system CPU time so far of these processes, the stack's servers (unless not
        `stack`) and all their live descendants (what FacePass spends, end to end)."""
        total = 0.0
        seen: set[int] = set()
        for pid in (*pids, *(self.stack_pids if stack else ())):
            try:
                root = psutil.Process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    if proc.pid not in seen:
                        seen.add(proc.pid)
                        times = proc.cpu_times()
                        total += times.user + times.system
            except psutil.Error:
                continue
        return total


@contextmanager
def open_bench(*, configured: bool = False, keep: bool = False) -> Iterator[Bench]:
    """A private embedded stack in a fresh directory under .facepass/bench (removed afterwards
    unless `keep`), or the configured servers when `configured`."""
    from libs.stack.stack import EmbeddedStack

    BENCH_STATE.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="run-", dir=BENCH_STATE)).resolve()
    log_dir = root / "logs"
    log_dir.mkdir()
    if configured:
        bench = Bench(isolated(load_settings()), log_dir, mode="configured")
        bench.prepare()
        try:
            yield bench
        finally:
            if not keep:
                shutil.rmtree(root, ignore_errors=True)
        return
    settings = isolated(
        private_stack_settings(root / "state", bucket="facepass-bench", start_timeout_s=120)
    )
    stack = EmbeddedStack(settings)
    stack.start()
    try:
        pids = [pid for s in stack.servers if (pid := s.process().running_pid()) is not None]
        bench = Bench(settings, log_dir, stack_pids=pids)
        bench.prepare()
        yield bench
    finally:
        stack.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
