"""Whom the API believes about a client's address: only TRUSTED_PROXIES may vouch for one.

Outside testing found the per-IP search limit escapable: uvicorn's own proxy-header handling
(on by default, trusting loopback) rewrote the client address from X-Forwarded-For before the
limiter saw it, so every request with a new header value got a fresh budget.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from redis import Redis

from libs.common.settings import Settings
from tests.support.processes import facepass_serve

LIMIT = 4
#: A Valkey database of its own, so other tests' searches from 127.0.0.1 do not count here.
REDIS_DB = 9


@pytest.mark.parametrize(
    ("target", "trusted"),
    [("search-api", ""), ("all", "192.0.2.0/24")],
    ids=["search-api-no-proxies", "all-other-proxies"],
)
def test_forwarded_for_from_an_untrusted_peer_does_not_escape_the_limit(
    stack: Settings, tmp_path: Path, target: str, trusted: str
) -> None:
    """Requests from 127.0.0.1, which is not a trusted proxy here, each claiming another
    address: they share the peer's one budget, and the limiter keeps one counter for them."""
    redis = Redis(host=stack.redis.host, port=stack.redis.port, db=REDIS_DB)
    redis.flushdb()
    env = {
        "SEARCH_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "TRUSTED_PROXIES": trusted,
        "REDIS_DB": str(REDIS_DB),
    }
    with facepass_serve(stack, tmp_path, target, **env) as server:
        statuses = [
            httpx.post(
                f"{server.base_url}/api/v2/search",
                data={"session_id": "proxies"},
                files={"file": ("selfie.jpg", b"not an image, still counted", "image/jpeg")},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
                timeout=30,
            ).status_code
            for i in range(LIMIT + 3)
        ]
    assert statuses[:LIMIT] == [415] * LIMIT
    assert statuses[LIMIT:] == [429] * 3
    assert len(list(redis.scan_iter("facepass:ratelimit:search-ip:*"))) == 1
