"""The routes answer as their OpenAPI document says, without servers: OPTIONS lists every
documented method of a path, and the search form's documented bounds are exactly the ones the
route accepts (what schemathesis' positive/negative data checks ask, on the edge cases)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient
from pydantic import SecretStr

from libs.common.http.deps import RUNTIME_DEPENDENCIES
from libs.common.http.health import HealthController
from libs.common.http.problems import EXCEPTION_HANDLERS
from libs.common.settings import AppSettings, Settings
from services.ingest.controllers import IngestController
from services.search_api.controllers import SearchController
from tests.support.fake_db import FakePhotoDb
from tests.support.fakes import FakeEngine, FakeObjectStore, fake_runtime, plain_jpeg

KEY = {"X-API-Key": "unit-test-key"}

#: Search form fields at and around their documented bounds (multipart sends text).
SEARCH_EDGES: list[dict[str, str]] = [
    *({"limit": v} for v in ("0", "1", "1000", "1001")),
    *({"threshold": v} for v in ("0.29", "0.3", "1", "1.01")),
    *({"session_id": v} for v in ("a" * 128, "a" * 129, "a.", ".a", "a..b")),
]


@pytest.fixture
def client(
    db: FakePhotoDb, store: FakeObjectStore, engine: FakeEngine
) -> Iterator[TestClient[Litestar]]:
    settings = Settings(app=AppSettings(_env_file=None, api_keys=[SecretStr(KEY["X-API-Key"])]))
    runtime = fake_runtime(store=store, engine=engine, settings=settings)
    app = Litestar(
        route_handlers=[HealthController, IngestController, SearchController],
        dependencies=RUNTIME_DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"runtime": runtime, "targets": ["ingest", "search-api"]}),
    )
    with TestClient(app) as test_client:
        yield test_client


def _document(client: TestClient[Litestar]) -> dict[str, Any]:
    document: dict[str, Any] = client.app.openapi_schema.to_schema()
    return document


def test_options_allow_lists_every_documented_method(client: TestClient[Litestar]) -> None:
    paths = _document(client)["paths"]
    assert "/api/v2/photos/{photo_id}" in paths
    for path, item in paths.items():
        answer = client.options(re.sub(r"\{\w+\}", "p1", path), headers=KEY)
        assert answer.status_code == 204, path
        allowed = set(answer.headers["allow"].split(", "))
        assert allowed == {method.upper() for method in item} | {"OPTIONS"}, path


@pytest.mark.parametrize("fields", SEARCH_EDGES, ids=lambda f: next(iter(f.items()))[1][:12])
def test_search_accepts_exactly_what_its_form_documents(
    client: TestClient[Litestar], fields: dict[str, str]
) -> None:
    form = {"session_id": "s1", **fields}
    component = _document(client)["components"]["schemas"]["SearchForm"]
    parse = {"limit": int, "threshold": float}
    typed = {k: parse.get(k, str)(v) for k, v in form.items()}
    documented = Draft202012Validator(component).is_valid({**typed, "file": ["bytes"]})
    files = {"file": ("s.jpg", plain_jpeg(), "image/jpeg")}
    answer = client.post("/api/v2/search", data=form, files=files)
    assert answer.status_code == (200 if documented else 422), answer.text


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_search_takes_one_to_three_selfies_as_documented(
    client: TestClient[Litestar], count: int
) -> None:
    component = _document(client)["components"]["schemas"]["SearchForm"]
    documented = Draft202012Validator(component).is_valid(
        {"session_id": "s1", "file": ["bytes"] * count}
    )
    files = [("file", (f"s{i}.jpg", plain_jpeg(), "image/jpeg")) for i in range(count)]
    answer = client.post("/api/v2/search", data={"session_id": "s1"}, files=files)
    assert answer.status_code == (200 if documented else 422), answer.text
    assert documented is (count <= 3)
