"""One supervised server process: start, find again, stop.

A server started by `facepass up` runs in its own session (so a Ctrl-C in the terminal does not
hit it before its dependants are stopped) and receives SIGTERM if the process that started it
dies (Linux parent-death signal), so nothing is orphaned even after a `kill -9` of the
supervisor. A pid file in the state directory lets a second `facepass up` (or the test harness)
find and reuse a server that is already running instead of starting a second copy.

The pid file only says what runs now, perhaps a server another stack started after ours died:
stopping goes by the child process this object started (its `Popen`, whose pid cannot be
reused before it is reaped), and the pid file is removed only while it still names that child.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """The embedded stack could not be started; the message says which server and why."""


def die_with_parent(signum: int) -> Callable[[], None]:
    """A preexec_fn: the child gets `signum` when the thread that started it dies."""

    def set_parent_death_signal() -> None:  # pragma: no cover - runs between fork and exec
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum)

    return set_parent_death_signal


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise StackError(f"{what} did not become ready within {timeout:.0f} s")


@dataclass
class ManagedProcess:
    """A server binary run from `facepass up`, identified by `name` within one state directory."""

    name: str
    argv: Sequence[str]
    run_dir: Path
    log_file: Path
    env: Mapping[str, str] | None = None
    user: str | None = None
    cwd: Path | None = None
    #: The signal that asks this server for a clean, prompt shutdown.
    stop_signal: int = signal.SIGTERM
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def running_pid(self) -> int | None:
        """Pid of our server if the pid file points at a live process running our binary.

        The executable is compared, not the command line: servers such as Valkey rewrite their
        process title.
        """
        try:
            pid = int(self.pid_file.read_text().strip())
            proc = psutil.Process(pid)
            same_binary = os.path.realpath(proc.exe()) == os.path.realpath(self.argv[0])
            if proc.status() == psutil.STATUS_ZOMBIE or not same_binary:
                return None
        except (OSError, ValueError, psutil.Error):
            return None
        return pid

    def start(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                user=self.user,
                start_new_session=True,
                preexec_fn=die_with_parent(self.stop_signal),
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        self._popen = proc
        return proc.pid

    def exit_code(self) -> int | None:
        """The exit code of the process this object started, once it has exited; else None.

        Asking reaps it: a child nobody waits for stays a zombie, whose pid still looks alive
        (PostgreSQL then refuses to start on a data directory whose postmaster.pid names it).
        """
        return None if self._popen is None else self._popen.poll()

    def exited_early(self) -> str | None:
        """If the process we started has exited, its exit code and the tail of its log."""
        code = self.exit_code()
        if code is None:
            return None
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-15:]
        except OSError:
            tail = []
        return f"exited with code {code}; last log lines:\n" + "\n".join(tail)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process this object started, if it still runs: stop signal, wait, SIGKILL.

        A server this object did not start (reused, or started by another stack in the place
        of ours) is left running, and so is its pid file.
        """
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            popen.send_signal(self.stop_signal)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    popen.wait(5)
        with contextlib.suppress(OSError, ValueError):
            if int(self.pid_file.read_text().strip()) == popen.pid:
                self.pid_file.unlink()
