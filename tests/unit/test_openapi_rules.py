"""The OpenAPI document states the rules the code enforces, so a client (or schemathesis) that
keeps to it is never refused: the id rule on every id, and Retry-After on every 429 and 503.
The search bounds are checked against the route's answers in services/test_route_contract.py.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from facepass.server import create_app
from libs.common.events import is_valid_id
from libs.common.http.problems import PROBLEM_MEDIA_TYPE
from libs.common.settings import load_settings

#: Edge cases of the id rule. (No trailing newline: jsonschema matches `pattern` with Python's
#: `re.search`, where `$` also matches before a final newline; JSON Schema's ECMA `$` does not.)
ID_SAMPLES = [
    "", "a", "Z", "0", "a" * 128, "a" * 129, "a.", ".a", "_a", "-a", "a..b", "a.b:c_d-e",
    "a/b", "../a", "a b", "ü", "a\x00",
]  # fmt: skip


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(load_settings(), "all").openapi_schema.to_schema()
    return schema


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def _id_schemas(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every id the API takes: path parameters and the forms' id fields."""
    found = {
        f"{name} {parameter['name']}": parameter["schema"]
        for name, operation in _operations(document)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and parameter["name"] != "token"
    }
    components = document["components"]["schemas"]
    for form, fields in {
        "IndexForm": ["photo_id", "session_id"],
        "SearchForm": ["session_id"],
        "SubscribeForm": ["session_id"],
    }.items():
        for field in fields:
            found[f"{form}.{field}"] = components[form]["properties"][field]
    return found


def test_every_id_is_documented_with_the_rule_the_routes_enforce(
    document: dict[str, Any],
) -> None:
    schemas = _id_schemas(document)
    assert len(schemas) == 8, sorted(schemas)  # 4 path parameters, 4 form fields
    enforced = [s for s in ID_SAMPLES if is_valid_id(s)]
    for where, schema in schemas.items():
        documented = [s for s in ID_SAMPLES if Draft202012Validator(schema).is_valid(s)]
        assert documented == enforced, where


def test_subscription_tokens_are_documented_as_the_routes_take_them(
    document: dict[str, Any],
) -> None:
    tokens = [
        parameter["schema"]
        for _, operation in _operations(document)
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "token"
    ]
    assert len(tokens) == 2
    for schema in tokens:
        validator = Draft202012Validator(schema)
        assert validator.is_valid(secrets.token_urlsafe(32))
        assert not validator.is_valid("../x") and not validator.is_valid("short")


def test_every_429_and_503_documents_its_retry_after(document: dict[str, Any]) -> None:
    answers = [
        (name, code, response)
        for name, operation in _operations(document)
        for code, response in operation["responses"].items()
        if code in {"429", "503"}
    ]
    assert len(answers) >= 7, answers
    for name, code, response in answers:
        header = response.get("headers", {}).get("Retry-After")
        assert header is not None and header["required"], (name, code)
        assert header["schema"]["type"] == "integer", (name, code)


def test_health_documents_its_503_as_a_problem_naming_what_is_down(
    document: dict[str, Any],
) -> None:
    not_ready = document["paths"]["/api/v2/health"]["get"]["responses"]["503"]
    schema = not_ready["content"][PROBLEM_MEDIA_TYPE]["schema"]
    component = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert {"type", "title", "status", "detail", "down", "dependencies"} <= set(
        component["required"]
    )
