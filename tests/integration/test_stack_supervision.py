"""Two stacks on one state directory: each stops only the servers it started itself."""

from __future__ import annotations

import os
import signal
import time

import psutil

from libs.stack.process import port_is_open
from libs.stack.stack import EmbeddedStack
from tests.support.stack import private_state_dir, stack_settings


def _wait_dead(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} still running")


def test_a_stack_leaves_a_server_another_stack_started_in_its_place() -> None:
    """Stack A's S3 dies; stack B, on the same state directory, starts a new one (its pid file
    now names B's) and reuses the rest. When A stops, B's S3 keeps running and keeps its pid
    file: A used to stop whatever the pid file named."""
    with private_state_dir() as state_dir:
        settings = stack_settings(state_dir)
        pid_file = state_dir / "run" / "s3.pid"
        first, second = EmbeddedStack(settings), EmbeddedStack(settings)
        try:
            first.start()
            first_s3 = int(pid_file.read_text())
            os.kill(first_s3, signal.SIGKILL)
            _wait_dead(first_s3)
            second.start()
            second_s3 = int(pid_file.read_text())
            assert second_s3 != first_s3
            first.stop()
            assert psutil.Process(second_s3).status() != psutil.STATUS_ZOMBIE
            assert int(pid_file.read_text()) == second_s3
            assert port_is_open("127.0.0.1", settings.s3.port)
        finally:
            first.stop()
            second.stop()
