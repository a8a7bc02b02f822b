"""The access log: one JSON line per request, including the ones refused before a handler ran
(outside testing found 401s, 429s and 400s left no line at all)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx

from libs.common.settings import Settings
from tests.support.data import T1
from tests.support.processes import API_KEY, ServerProcess, facepass_serve


def _requests(server: ServerProcess, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The access-log lines of `server` other than health checks, once there are `count` of them
    (the start-up's health polls also log lines; counting them returned before the last line)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = []
        for raw in server.log_path.read_text(errors="replace").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if line.get("event") == "request" and line.get("route") != "/api/v2/health":
                lines.append(line)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_every_request_gets_one_line_with_route_status_key_id_and_client(
    stack: Settings, tmp_path: Path
) -> None:
    env = {"TRUSTED_PROXIES": "127.0.0.1/32", "SEARCH_RATE_LIMIT_PER_MINUTE": "1000"}
    with facepass_serve(stack, tmp_path, "all", **env) as server, server.client() as client:
        proxied = {"X-Forwarded-For": "203.0.113.7"}
        index = "/api/v2/index"
        form = {"photo_id": "access-log-p1", "session_id": "access-log"}
        photo = {"file": ("t1.jpg", T1.read_bytes(), "image/jpeg")}
        sent = [
            client.post(index, data=form, files=photo, headers=proxied),  # no key: 401
            client.post(index, data=form, files=photo, headers={"X-API-Key": "wrong-key-xyz"}),
            client.post(index, data=form, files=photo, headers={"X-API-Key": API_KEY}),
            client.get("/api/v2/photos/access-log-p1", headers={"X-API-Key": API_KEY}),
            client.post("/api/v2/search", data={"session_id": "access-log"}, headers=proxied),
            client.get("/no/such/route", headers={"X-Request-ID": "trace-me-42"}),
        ]
        ours = _requests(server, len(sent))
    assert [r.status_code for r in sent] == [401, 401, 202, 200, 400, 404]
    assert [(line["method"], line["status"]) for line in ours] == [
        (r.request.method, r.status_code) for r in sent
    ]
    assert [line["route"] for line in ours] == [
        index, index, index, "/api/v2/photos/{photo_id}", "/api/v2/search", "<unmatched>"
    ]  # fmt: skip
    assert [line["key_id"] for line in ours[:4]] == [
        None,
        "invalid",
        hashlib.sha256(API_KEY.encode()).hexdigest()[:12],
        hashlib.sha256(API_KEY.encode()).hexdigest()[:12],
    ]
    # The client as TRUSTED_PROXIES resolves it: the proxy's word is taken from 127.0.0.1.
    assert ours[0]["client"] == ours[4]["client"] == "203.0.113.7"
    assert ours[1]["client"] == "127.0.0.1"
    assert ours[5]["request_id"] == "trace-me-42"
    assert all(line["duration_ms"] >= 0 and line["request_id"] for line in ours)
    text = server.log_path.read_text()
    assert API_KEY not in text and "wrong-key-xyz" not in text


def test_the_access_log_can_be_sampled_down_and_off(stack: Settings, tmp_path: Path) -> None:
    with facepass_serve(stack, tmp_path, "search-api", ACCESS_LOG_SAMPLE="0") as server:
        for _ in range(3):
            assert httpx.get(f"{server.base_url}/api/v2/health/live").status_code == 200
        assert httpx.get(f"{server.base_url}/nowhere").status_code == 404
        assert _requests(server, 1, timeout=1) == []
    with facepass_serve(stack, tmp_path, "search-api", ACCESS_LOG_SAMPLE="0.000001") as server:
        for _ in range(3):
            assert httpx.get(f"{server.base_url}/api/v2/health/live").status_code == 200
        # Successes are sampled; a failure is always logged.
        assert httpx.get(f"{server.base_url}/nowhere").status_code == 404
        lines = _requests(server, 1)
    assert [(line["route"], line["status"]) for line in lines] == [("<unmatched>", 404)]
