"""`facepass up` as users run it: banner, Ctrl-C / SIGTERM / kill -9 leave no server behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from libs.common.settings import Settings
from libs.stack.private import free_port, settings_env, wait_healthy
from tests.support.stack import private_state_dir, stack_settings

FACEPASS = str(Path(sys.executable).parent / "facepass")


def _env(settings: Settings) -> dict[str, str]:
    return settings_env(settings, KAFKA_PARTITIONS="2", FACEPASS_DEMO="false")


def _server_pids(state_dir: Path) -> list[int]:
    """Pids of the servers `facepass up` started, from their pid files."""
    return [int(f.read_text()) for f in sorted((state_dir / "run").glob("*.pid"))]


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _start_up(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [FACEPASS, "up", *args], env=_env(settings), stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    while "Press Ctrl-C to stop." not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"facepass up did not come up:\n{log.read_text(errors='replace')}")
        time.sleep(0.3)
    return proc


def _kill_all(proc: subprocess.Popen[bytes], pids: list[int]) -> None:
    """After a failed check: leave nothing running behind the test."""
    for pid in [proc.pid, *_alive(pids)]:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


def _wait_gone(pids: list[int], timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.3)
    return left


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_up_prints_endpoints_and_stops_cleanly(tmp_path: Path, signum: int) -> None:
    settings = stack_settings(tmp_path / "state")
    log = tmp_path / "up.log"
    proc = _start_up(settings, log, "--target", "none")
    text = log.read_text()
    assert f"127.0.0.1:{settings.postgres.port}" in text
    assert settings.s3.endpoint in text
    assert f"127.0.0.1:{settings.redis.port}" in text
    assert settings.kafka.bootstrap in text
    assert settings.postgres.password.get_secret_value() not in text
    pids = _server_pids(tmp_path / "state")
    try:
        assert len(_alive(pids)) == 4
        proc.send_signal(signum)
        assert proc.wait(90) == 0
        assert _wait_gone(pids) == []
        assert _server_pids(tmp_path / "state") == []
    finally:
        _kill_all(proc, pids)


def test_servers_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path / "state")
    proc = _start_up(settings, tmp_path / "up.log", "--target", "none")
    pids = _server_pids(tmp_path / "state")
    assert len(_alive(pids)) == 4
    proc.kill()
    proc.wait(10)
    assert _wait_gone(pids) == []


def test_bad_setting_exits_with_a_message_naming_it(tmp_path: Path) -> None:
    env = dict(os.environ, POSTGRES_PORT="not-a-port", POSTGRES_PASSWORD="s3cr3t-value!")
    result = subprocess.run(
        [FACEPASS, "up", "--state-dir", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "POSTGRES_PORT" in result.stderr
    assert "s3cr3t-value!" not in result.stderr + result.stdout


def test_up_serves_the_api_and_a_second_up_finds_the_same_data(tmp_path: Path) -> None:
    """`make run` twice: the photo indexed in the first run is still there in the second."""
    import httpx

    from tests.support.data import T1
    from tests.support.processes import API_KEY

    settings = stack_settings(tmp_path / "state")
    port = free_port()
    env = {
        **_env(settings),
        "FACEPASS_PORT": str(port),
        "API_KEYS": API_KEY,
        "FACEPASS_DEMO": "true",
    }
    base = f"http://127.0.0.1:{port}"
    for run in range(2):
        log = tmp_path / f"up-{run}.log"
        proc = subprocess.Popen(
            [FACEPASS, "up"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        try:
            wait_healthy(base, proc, log)
            headers = {"X-API-Key": API_KEY}
            if run == 0:
                response = httpx.post(
                    f"{base}/api/v2/index",
                    headers=headers,
                    data={"photo_id": "kept", "session_id": "demo"},
                    files={"file": ("t1.jpg", T1.read_bytes(), "image/jpeg")},
                    timeout=30,
                )
                assert response.status_code == 202
            deadline = time.monotonic() + 60
            status: dict[str, object] = {}
            while time.monotonic() < deadline:
                status = httpx.get(f"{base}/api/v2/photos/kept", headers=headers).json()
                if status.get("status") == "indexed":
                    break
                time.sleep(0.3)
            assert status.get("faces_indexed") == 6, status
            # The demo session is announced with the attendee page's link, and searchable.
            deadline = time.monotonic() + 60
            while f"{base}/s/demo" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.3)
            assert f"  page      {base}/" in log.read_text()
            assert f"{base}/s/demo (" in log.read_text()
            demo: dict[str, object] = {}
            while demo.get("status") != "indexed" and time.monotonic() < deadline + 60:
                demo = httpx.get(f"{base}/api/v2/photos/demo-t1", headers=headers).json()
                time.sleep(0.3)
            assert demo["session_id"] == "demo" and demo["faces_indexed"] == 6
        finally:
            pids = _server_pids(tmp_path / "state")
            proc.send_signal(signal.SIGINT)
            try:
                assert proc.wait(90) == 0
            finally:
                if proc.poll() is None:
                    _kill_all(proc, pids)
        assert _wait_gone(pids) == []


def test_a_busy_api_port_is_named(tmp_path: Path) -> None:
    import socket

    settings = stack_settings(tmp_path / "state")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = {**_env(settings), "FACEPASS_PORT": str(port)}
        result = subprocess.run([FACEPASS, "up"], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert f"port {port} (FACEPASS_PORT)" in result.stderr
    assert not (tmp_path / "state" / "run").exists() or _server_pids(tmp_path / "state") == []


def _postgres_answers(settings: Settings) -> bool:
    import psycopg

    try:
        with psycopg.connect(settings.postgres.dsn(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _pid_in(pid_file: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(pid_file.read_text())
    return 0


def _zombie_children(proc: subprocess.Popen[bytes]) -> list[int]:
    children = psutil.Process(proc.pid).children()
    return [c.pid for c in children if c.status() == psutil.STATUS_ZOMBIE]


def test_a_killed_server_is_reaped_and_restarted(tmp_path: Path) -> None:
    """A `kill -9`ed PostgreSQL comes back on its own, and its zombie (whose pid kept the
    server's postmaster.pid looking alive, so no later start succeeded) is reaped."""
    # Not under pytest's basetemp (see private_state_dir): PostgreSQL is started again mid-test.
    with private_state_dir() as state_dir:
        settings = stack_settings(state_dir)
        log = tmp_path / "up.log"
        proc = _start_up(settings, log, "--target", "none")
        pid_file = state_dir / "run" / "postgres.pid"
        killed = int(pid_file.read_text())
        try:
            os.kill(killed, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                pid = _pid_in(pid_file)
                if pid not in (0, killed) and _alive([pid]) and _postgres_answers(settings):
                    break
                time.sleep(0.5)
            else:
                pytest.fail(f"postgres was not restarted:\n{log.read_text(errors='replace')}")
            assert not psutil.pid_exists(killed)  # reaped: no zombie left behind
            assert _zombie_children(proc) == []
            assert '"server exited; restarting"' in log.read_text()
            pids = _server_pids(state_dir)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(90) == 0
            assert _wait_gone(pids) == []
        finally:
            _kill_all(proc, _server_pids(state_dir))


def test_a_server_that_keeps_dying_stops_up_with_an_error(tmp_path: Path) -> None:
    """Restarts back off and give up: `facepass up` exits 1 naming the server; a later
    `facepass up` starts it again once it can run."""
    with private_state_dir() as state_dir:
        settings = stack_settings(state_dir)
        log = tmp_path / "up.log"
        proc = _start_up(settings, log, "--target", "none")
        pids = _server_pids(state_dir)
        conf = state_dir / "postgres" / "postgresql.conf"
        good = conf.read_text()
        try:
            conf.write_text(good + "\nthis line is not a setting\n")
            os.kill(int((state_dir / "run" / "postgres.pid").read_text()), signal.SIGKILL)
            assert proc.wait(90) == 1
            text = log.read_text(errors="replace")
            assert "facepass up: postgres could not be kept running" in text
            assert _wait_gone(pids) == []
            conf.write_text(good)
            second = _start_up(settings, tmp_path / "up-2.log", "--target", "none")
            pids = _server_pids(state_dir)
            try:
                assert _postgres_answers(settings)
                second.send_signal(signal.SIGINT)
                assert second.wait(90) == 0
            finally:
                _kill_all(second, pids)
        finally:
            _kill_all(proc, pids)
