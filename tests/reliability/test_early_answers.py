"""Early answers reach clients that are still sending their upload.

A search refused before its body is read (429 from the rate limit, 400 for a body that is not
multipart) used to be answered with the connection closed under the client's feet: `ab` with the
seed checklist's literal command aborted with "Connection reset by peer". Each client must get
its status, whatever it sends and however much of it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
from redis import Redis

from libs.common.settings import Settings
from tests.support.processes import facepass_serve
from tests.support.reliability import uid

#: Larger than the socket buffers on both sides, so the client is still sending when the
#: server answers.
BIG_BODY = 8 * 1024 * 1024


def _fresh_counters(stack: Settings, db: str) -> None:
    """A Valkey database of the test's own, emptied: no earlier search counts against it."""
    Redis(host=stack.redis.host, port=stack.redis.port, db=int(db)).flushdb()


def _selfie(tmp_path: Path) -> Path:
    """A phone-selfie-sized file (its bytes do not matter to an early answer)."""
    path = tmp_path / "selfie.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * (BIG_BODY // 256))
    return path


def test_the_checklists_ab_load_test_completes(stack: Settings, tmp_path: Path) -> None:
    selfie = _selfie(tmp_path)
    env = {"SEARCH_RATE_LIMIT_PER_MINUTE": "20", "REDIS_DB": "10"}
    _fresh_counters(stack, env["REDIS_DB"])
    with facepass_serve(stack, tmp_path, "search-api", **env) as server:
        # The seed checklist's command, as written (its body is not even multipart).
        result = subprocess.run(
            ["ab", "-n", "200", "-c", "10", "-p", str(selfie), "-T", "multipart/form-data",
             f"{server.base_url}/api/v2/search"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Complete requests:      200" in output, output[-3000:]
    failed = re.search(
        r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", output
    )
    assert failed is None or failed.groups() == ("0", "0", "0"), output[-3000:]


def test_a_refused_big_upload_still_gets_its_429(stack: Settings, tmp_path: Path) -> None:
    """The limit answers before the body is read; the client sends all of it, then reads."""
    env = {"SEARCH_RATE_LIMIT_PER_MINUTE": "2", "REDIS_DB": "11"}
    body = _selfie(tmp_path).read_bytes()
    _fresh_counters(stack, env["REDIS_DB"])
    with (
        facepass_serve(stack, tmp_path, "search-api", **env) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as client,
    ):
        statuses = [
            client.post(
                "/api/v2/search",
                data={"session_id": uid("early")},
                files={"file": ("selfie.jpg", body, "image/jpeg")},
            ).status_code
            for _ in range(4)
        ]
        # The connection stays usable after a refusal.
        assert client.get("/api/v2/health/live").status_code == 200
    assert statuses[2:] == [429, 429], statuses
