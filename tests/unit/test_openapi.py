"""The OpenAPI document of the `all` target is valid and documents every public route."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from facepass.server import create_app
from libs.common.settings import load_settings


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(load_settings(), "all")
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return schema


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_every_api_route_is_documented_with_its_errors(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for path, method in [
        ("/api/v2/index", "post"),
        ("/api/v2/search", "post"),
        ("/api/v2/photos/{photo_id}", "get"),
        ("/api/v2/photos/{photo_id}", "delete"),
        ("/api/v2/sessions/{session_id}", "delete"),
        ("/api/v2/sessions/{session_id}/qr.svg", "get"),
        ("/api/v2/health", "get"),
    ]:
        assert method in paths[path], (path, method)
    search = paths["/api/v2/search"]["post"]
    assert "multipart/form-data" in search["requestBody"]["content"]
    answer = _properties(document, search["responses"]["200"])
    assert {"session_id", "results", "query_face", "threshold", "took_ms"} <= set(answer)
    expansion = answer["query_expansion"]
    if "$ref" in expansion:
        expansion = document["components"]["schemas"][expansion["$ref"].rsplit("/", 1)[1]]
    assert set(expansion["properties"]) == {"used", "faces"}
    assert document["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"


def _properties(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    schema = response["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    properties: dict[str, Any] = schema["properties"]
    return properties


def test_errors_are_documented_as_problem_details(document: dict[str, Any]) -> None:
    index = document["paths"]["/api/v2/index"]["post"]["responses"]
    for code in ("400", "401", "413", "415", "422", "429", "503"):
        assert list(index[code]["content"]) == ["application/problem+json"], code
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}


def test_search_results_document_their_links_and_the_selfies(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    result = schemas["SearchResult"]["properties"]
    for field in ("thumbnail_url", "preview_url", "original_url", "width", "height", "url"):
        assert result[field].get("description"), field
    assert "SEARCH_ORIGINALS" in result["original_url"]["description"]
    selfies = schemas["SearchForm"]["properties"]["file"]
    assert (selfies["type"], selfies["minItems"], selfies["maxItems"]) == ("array", 1, 3)
