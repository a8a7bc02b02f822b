"""Load: selfie searches at 200 concurrent connections for a bounded time, with `wrk`.

Two bursts against one server (SEARCH_RATE_LIMIT_PER_MINUTE set, TRUSTED_PROXIES=127.0.0.1 so
each request's client identity is the X-Forwarded-For the script gives it, cache off so every
search does the full work):
- limited: every request from one client identity. Answers are 200 until the per-minute limit,
  429 with Retry-After beyond it, never 5xx; 200s never exceed the limit.
- unlimited: each request from an identity of its own, so every search is served: no 5xx,
  p50/p99 latency and throughput measured.
Before and after, a few sequential searches: the service is back to its normal latency after
the burst (compared relatively, with a generous margin). Results go to the test's output
(`LOAD-RESULT`) and are recorded in docs/reliability.md.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.common.settings import Settings
from tests.support.data import T1, TOM_HANKS, jpeg_bytes
from tests.support.processes import facepass_serve
from tests.support.reliability import index, search, uid, wait_indexed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (make test-tools)"),
]

LIMIT_PER_MINUTE = 60
CONNECTIONS = 200
DURATION_S = 20
BOUNDARY = "facepassloadboundary7d3c"

LUA = r"""
local body_file = io.open(os.getenv("LOAD_BODY"), "rb")
local body = body_file:read("*all")
body_file:close()
local mode = os.getenv("LOAD_MODE")
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function request()
  counter = counter + 1
  local client = "10.200.0.1"
  if mode == "unlimited" then
    client = string.format("10.%d.%d.%d", id, math.floor(counter / 250) % 250, counter % 250)
  end
  return wrk.format("POST", "/api/v2/search", {
    ["Content-Type"] = "multipart/form-data; boundary=" .. os.getenv("LOAD_BOUNDARY"),
    ["X-Forwarded-For"] = client,
  }, body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status == 429 and headers["Retry-After"] == nil and headers["retry-after"] == nil then
    statuses["429-without-retry-after"] = (statuses["429-without-retry-after"] or 0) + 1
  end
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%s": %d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'LOAD-JSON {"requests": %d, "duration_us": %d, "statuses": {%s}, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, ' ..
    '"latency_ms": {"p50": %.1f, "p90": %.1f, "p99": %.1f, "max": %.1f, "mean": %.1f}}\n',
    summary.requests, summary.duration, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000))
end
"""


def _multipart(session: str, selfie: bytes) -> bytes:
    crlf = b"\r\n"
    return (
        b"--" + BOUNDARY.encode() + crlf
        + b'Content-Disposition: form-data; name="session_id"' + crlf + crlf
        + session.encode() + crlf
        + b"--" + BOUNDARY.encode() + crlf
        + b'Content-Disposition: form-data; name="file"; filename="selfie.jpg"' + crlf
        + b"Content-Type: image/jpeg" + crlf + crlf
        + selfie + crlf
        + b"--" + BOUNDARY.encode() + b"--" + crlf
    )  # fmt: skip


def _wrk(base_url: str, body: Path, script: Path, mode: str) -> dict[str, Any]:
    result = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(CONNECTIONS),
            "-d",
            f"{DURATION_S}s",
            "--timeout",
            "60s",
            "-s",
            str(script),
            base_url,
        ],
        env={
            "LOAD_BODY": str(body),
            "LOAD_MODE": mode,
            "LOAD_BOUNDARY": BOUNDARY,
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=DURATION_S + 120,
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("LOAD-JSON "))
    report: dict[str, Any] = json.loads(line.removeprefix("LOAD-JSON "))
    report["rps"] = round(report["requests"] / (report["duration_us"] / 1e6), 1)
    return report


def _latencies(client: httpx.Client, session: str, selfie: bytes, n: int = 7) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        response = search(client, session, selfie, headers={"X-Forwarded-For": f"10.250.0.{i}"})
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return out


def test_search_at_200_connections(stack: Settings, tmp_path: Path) -> None:
    session = uid("load")
    selfie = jpeg_bytes(TOM_HANKS)
    body, script = tmp_path / "body.bin", tmp_path / "search.lua"
    body.write_bytes(_multipart(session, selfie))
    script.write_text(LUA)
    with facepass_serve(
        stack,
        tmp_path,
        SEARCH_RATE_LIMIT_PER_MINUTE=str(LIMIT_PER_MINUTE),
        TRUSTED_PROXIES="127.0.0.1",
        SEARCH_CACHE_TTL_S="0",
        KAFKA_CONSUMER_GROUP=uid("load-group"),
    ) as server:
        with httpx.Client(base_url=server.base_url, timeout=120) as client:
            photos = {f"{session}-t1": T1.read_bytes(), f"{session}-tom": jpeg_bytes(TOM_HANKS)}
            for photo, data in photos.items():
                assert index(client, photo, session, data).status_code == 202
            wait_indexed(server, list(photos))
            _latencies(client, session, selfie, 3)  # warm-up
            before = _latencies(client, session, selfie)
            limited = _wrk(server.base_url, body, script, "limited")
            unlimited = _wrk(server.base_url, body, script, "unlimited")
            # Recovery: the queue drains and sequential searches are back to normal.
            deadline = time.monotonic() + 120
            while True:
                after = _latencies(client, session, selfie)
                recovered = statistics.median(after) <= 3 * statistics.median(before) + 250
                if recovered or time.monotonic() > deadline:
                    break
                time.sleep(5)
        log = server.log()
    result = {
        "connections": CONNECTIONS,
        "duration_s": DURATION_S,
        "limit_per_minute": LIMIT_PER_MINUTE,
        "limited": limited,
        "unlimited": unlimited,
        "before_ms": {"median": round(statistics.median(before), 1), "max": round(max(before), 1)},
        "after_ms": {"median": round(statistics.median(after), 1), "max": round(max(after), 1)},
    }
    print("LOAD-RESULT", json.dumps(result))
    (tmp_path / "load-result.json").write_text(json.dumps(result, indent=2))

    for burst in (limited, unlimited):
        statuses = burst["statuses"]
        assert not [s for s in statuses if s.startswith("5")], burst
        assert burst["errors"]["connect"] == 0 and burst["errors"]["timeout"] == 0, burst
    assert set(limited["statuses"]) <= {"200", "429"}, limited
    assert limited["statuses"].get("200", 0) <= LIMIT_PER_MINUTE
    assert limited["statuses"].get("429", 0) > 0
    assert "429-without-retry-after" not in limited["statuses"]
    assert set(unlimited["statuses"]) == {"200"}, unlimited
    assert recovered, result
    assert '"unhandled error"' not in log
