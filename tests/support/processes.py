"""Run `facepass` processes (serve, up) against a test stack, as users and operators do."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from libs.common.settings import Settings
from libs.stack.private import free_port, settings_env, stacks_and_log, wait_healthy
from libs.stack.process import die_with_parent

FACEPASS = str(Path(sys.executable).parent / "facepass")
API_KEY = "test-api-key-0123456789"


def stack_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that points a facepass process at the servers of `settings`."""
    defaults = {
        "API_KEYS": API_KEY,
        "EMBEDDER_BATCH_WAIT_MS": "50",
        # Every test client is 127.0.0.1: the suite would trip the limits. Tests of the limits
        # set them and give each client an address of its own (X-Forwarded-For).
        "SEARCH_RATE_LIMIT_PER_MINUTE": "0",
        "RATE_LIMIT_API_KEY_PER_MINUTE": "0",
    }
    return settings_env(settings, **{**defaults, **extra})


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stacks(self) -> str:
        """Every thread's stack and the log's tail: what a test that gave up waiting on this
        process reports."""
        return stacks_and_log(self.process, self.log_path)

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)  # type: ignore[arg-type]


@contextmanager
def facepass_serve(
    settings: Settings, log_dir: Path, target: str = "all", **env: str
) -> Iterator[ServerProcess]:
    """`facepass serve --target TARGET` on a free port, stopped with SIGTERM afterwards."""
    port = free_port()
    log_path = log_dir / f"serve-{target}-{port}.log"
    process = subprocess.Popen(
        [FACEPASS, "serve", "--target", target],
        env=stack_env(settings, FACEPASS_PORT=str(port), **env),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        # If the test process dies, its servers go with it.
        preexec_fn=die_with_parent(signal.SIGTERM),
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process, log_path)
        yield ServerProcess(process, base_url, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
