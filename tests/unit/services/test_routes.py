"""The services' HTTP routes without servers: ingest's and the search API's controllers on a
Litestar app over a fake runtime (tests/support/fakes.py), with the real guards, problem
handlers and runtime provider."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient
from pydantic import SecretStr

from libs.common.http.deps import RUNTIME_DEPENDENCIES
from libs.common.http.problems import EXCEPTION_HANDLERS, PROBLEM_MEDIA_TYPE
from libs.common.runtime import Runtime
from libs.common.settings import AppSettings, Settings
from services.ingest.controllers import IngestController
from services.search_api.controllers import SearchController
from tests.support.fake_db import FakePhotoDb
from tests.support.fakes import FakeEngine, FakeObjectStore, fake_runtime, plain_jpeg

KEY = "unit-test-key"


@pytest.fixture
def runtime(db: FakePhotoDb, store: FakeObjectStore, engine: FakeEngine) -> Runtime:
    settings = Settings(app=AppSettings(_env_file=None, api_keys=[SecretStr(KEY)]))
    return fake_runtime(store=store, engine=engine, broker=KafkaBroker("127.0.0.1:1"),
                        settings=settings)  # fmt: skip


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient[Litestar]]:
    app = Litestar(
        route_handlers=[IngestController, SearchController],
        dependencies=RUNTIME_DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"runtime": runtime}),
    )
    with TestClient(app) as test_client:
        yield test_client


def _index(
    client: TestClient[Litestar], photo_id: str, data: bytes, key: str = KEY
) -> httpx.Response:
    return client.post(
        "/api/v2/index",
        headers={"X-API-Key": key},
        data={"photo_id": photo_id, "session_id": "s1"},
        files={"file": ("p.jpg", data, "image/jpeg")},
    )


async def test_index_status_and_erase_through_the_routes(
    client: TestClient[Litestar], runtime: Runtime, db: FakePhotoDb, store: FakeObjectStore
) -> None:
    async with TestKafkaBroker(runtime.kafka()):
        refused = _index(client, "p1", plain_jpeg(), key="wrong-key-123")
        accepted = _index(client, "p1", plain_jpeg())
    assert refused.status_code == 401
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert accepted.status_code == 202
    assert accepted.headers["location"] == "/api/v2/photos/p1"
    assert accepted.json()["status"] == "queued"
    status = client.get("/api/v2/photos/p1", headers={"X-API-Key": KEY})
    assert status.status_code == 200 and status.json()["status"] == "queued"
    assert client.get("/api/v2/photos/nope", headers={"X-API-Key": KEY}).status_code == 404
    erased = client.delete("/api/v2/photos/p1", headers={"X-API-Key": KEY})
    assert erased.status_code == 200 and erased.json()["objects_deleted"] == 1
    assert store.keys() == [] and "p1" not in db.rows


def test_bad_uploads_change_nothing(
    client: TestClient[Litestar], db: FakePhotoDb, store: FakeObjectStore
) -> None:
    bad_id = _index(client, "../p", plain_jpeg())
    not_image = _index(client, "p2", b"%PDF-1.7")
    assert bad_id.status_code == 422
    assert bad_id.json()["type"] == "/problems/invalid-id"
    assert not_image.status_code == 415
    assert db.rows == {} and store.keys() == []


def test_search_route_validates_then_answers(client: TestClient[Litestar], db: FakePhotoDb) -> None:
    def search(**form: str) -> httpx.Response:
        files = {"file": ("s.jpg", plain_jpeg(), "image/jpeg")}
        return client.post("/api/v2/search", data={"session_id": "s1", **form}, files=files)

    ok = search()
    assert ok.status_code == 200
    assert ok.json()["results"] == [] and ok.json()["threshold"] == 0.5
    bad = search(limit="0", threshold="0.05")
    assert bad.status_code == 422
    assert len(bad.json()["errors"]) == 2
