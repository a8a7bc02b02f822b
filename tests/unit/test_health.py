"""GET /api/v2/health without servers: a Runtime over stand-ins for the database and Redis
that answer or are down, on a Litestar app with the real controller and problem handlers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient

from libs.common.http.deps import RUNTIME_DEPENDENCIES
from libs.common.http.health import HealthController
from libs.common.http.problems import EXCEPTION_HANDLERS, PROBLEM_MEDIA_TYPE, RETRY_AFTER_S
from libs.common.runtime import Need, Runtime
from libs.common.settings import Settings


class Server:
    """The one call readiness makes on a pool (`fetchval`) or on Redis (`ping`)."""

    def __init__(self, down: bool) -> None:
        self.down = down

    async def fetchval(self, query: str) -> int:
        return await self.ping()

    async def ping(self) -> int:
        if self.down:
            raise ConnectionRefusedError("connection refused")
        return 1


def _client(*, db_down: bool = False, redis_down: bool = False) -> TestClient[Litestar]:
    runtime = Runtime(
        settings=Settings(),
        needs=frozenset({Need.DB, Need.REDIS}),
        db=Server(db_down),  # type: ignore[arg-type]
        redis=Server(redis_down),  # type: ignore[arg-type]
    )
    app = Litestar(
        route_handlers=[HealthController],
        dependencies=RUNTIME_DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"runtime": runtime, "targets": ["ingest"]}),
    )
    return TestClient(app)


@pytest.fixture
def down() -> Iterator[TestClient[Litestar]]:
    with _client(db_down=True) as client:
        yield client


def test_not_ready_is_a_problem_with_retry_after_naming_the_dependency(
    down: TestClient[Litestar],
) -> None:
    health = down.get("/api/v2/health")
    assert health.status_code == 503
    assert health.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert health.headers["retry-after"] == str(RETRY_AFTER_S)
    body = health.json()
    assert body["type"] == "/problems/not-ready" and body["status"] == 503
    assert "postgres" in body["detail"] and body["title"]
    assert body["down"] == ["postgres"] and body["dependencies"]["redis"]["status"] == "up"
    assert body["dependencies"]["postgres"] == {
        "status": "down",
        "error": "ConnectionRefusedError",
    }
    assert body["targets"] == ["ingest"] and body["service"] and body["version"]


@pytest.mark.parametrize(("redis_down", "status"), [(False, "ok"), (True, "degraded")])
def test_ready_is_plain_json_and_names_what_degrades_it(redis_down: bool, status: str) -> None:
    with _client(redis_down=redis_down) as client:
        health = client.get("/api/v2/health")
    assert health.status_code == 200
    assert health.headers["content-type"] == "application/json"
    assert "retry-after" not in health.headers
    assert health.json()["status"] == status
    assert health.json().get("down", []) == (["redis"] if redis_down else [])
    assert health.json()["dependencies"]["postgres"]["status"] == "up"
