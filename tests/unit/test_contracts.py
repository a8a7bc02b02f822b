"""The committed contracts under schemas/ are what the code generates, and they validate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from facepass.contracts import ASYNCAPI_FILE, asyncapi_document, dumps, event_schemas
from libs.common.events import (
    ObjectRef,
    PhotoFailed,
    PhotoIndexed,
    PhotoMatched,
    PhotoUploaded,
    RejectedFace,
    SourceRecord,
    StageTimings,
    is_valid_id,
    matched_event_id,
)
from libs.common.settings import load_settings

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
REGENERATE = "run `facepass schemas export` and commit schemas/"


@pytest.fixture
def default_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("KAFKA_", "APP_")):
            monkeypatch.delenv(name)
    return load_settings()


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_event_schemas_are_up_to_date() -> None:
    for name, schema in event_schemas().items():
        assert (SCHEMAS / name).read_text() == dumps(schema), REGENERATE


async def test_asyncapi_document_is_up_to_date(default_settings) -> None:  # type: ignore[no-untyped-def]
    document = await asyncapi_document(default_settings)
    assert (SCHEMAS / ASYNCAPI_FILE).read_text() == dumps(document), REGENERATE
    operations = {name: op["action"] for name, op in document["operations"].items()}
    assert operations == {
        "photos.uploaded:ingest": "send",
        "photos.uploaded:embedder": "receive",
        "photos.indexed:embedder": "send",
        "photos.dlq:embedder": "send",
        "photos.matched:embedder": "send",
    }
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {
        "facepass.photos.uploaded.v1",
        "facepass.photos.indexed.v1",
        "facepass.photos.dlq.v1",
        "facepass.photos.matched.v1",
    }


def test_events_the_code_emits_validate_against_the_files() -> None:
    uploaded = PhotoUploaded(
        photo_id="p-1",
        session_id="wedding-2026",
        object=ObjectRef(bucket="pixora-photos", key="2026/06/p-1.jpg"),
        content_type="image/jpeg",
    )
    indexed = PhotoIndexed(
        photo_id="p-1",
        session_id="wedding-2026",
        faces_indexed=3,
        faces_rejected=[RejectedFace(reason="too_small", bbox=[1, 2, 3, 4])],
        model_id="m",
        timings=StageTimings(detect_ms=12.5, total_ms=40),
    )
    failed = PhotoFailed(
        photo_id=None,
        error_kind="invalid_event",
        error="photo_id: field required",
        attempts=1,
        source=SourceRecord(topic="t", partition=0, offset=9, value="{}"),
    )
    matched = PhotoMatched(
        event_id=matched_event_id("sub-1", "p-1"),
        subscription_id="sub-1",
        session_id="wedding-2026",
        photo_id="p-1",
        similarity=0.61,
        bbox=[10, 20, 110, 140],
        model_id="m",
    )
    for name, event in (
        ("photos.uploaded.v1.schema.json", uploaded),
        ("photos.indexed.v1.schema.json", indexed),
        ("photos.dlq.v1.schema.json", failed),
        ("photos.matched.v1.schema.json", matched),
    ):
        errors = list(_validator(name).iter_errors(event.model_dump(mode="json")))
        assert errors == [], name
    # A pair's event id is the same on every publication, and differs between pairs.
    assert matched.event_id == matched_event_id("sub-1", "p-1")
    assert matched_event_id("sub-1", "p-2") != matched.event_id != matched_event_id("sub-2", "p-1")


@pytest.mark.parametrize(
    "bad",
    [
        {"photo_id": "../etc", "session_id": "s", "object": {"bucket": "bkt", "key": "k"}},
        {"photo_id": "p", "session_id": "s"},
        {"photo_id": "p", "session_id": "s", "object": {"bucket": "bkt", "key": ""}},
        {"photo_id": "p", "session_id": "s/x", "object": {"bucket": "bkt", "key": "k"}},
        {"photo_id": "a..b", "session_id": "s", "object": {"bucket": "bkt", "key": "k"}},
        {"photo_id": "p" * 129, "session_id": "s", "object": {"bucket": "bkt", "key": "k"}},
    ],
)
def test_the_uploaded_schema_rejects_what_the_embedder_rejects(bad: dict[str, object]) -> None:
    assert list(_validator("photos.uploaded.v1.schema.json").iter_errors(bad))
    with pytest.raises(ValueError):
        PhotoUploaded.model_validate(bad)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("a", True),
        ("IMG_0001.jpg", True),
        ("event:2026-12-01.a.b", True),
        ("trailing.", True),
        ("p" * 128, True),
        ("p" * 129, False),
        ("", False),
        (".hidden", False),
        ("-dash", False),
        ("a..b", False),
        ("x:..:y", False),
        ("a/b", False),
        ("a b", False),
        ("\uff50hoto", False),
    ],
)
def test_one_id_rule_for_the_api_and_the_events(value: str, valid: bool) -> None:
    """is_valid_id (the API's check) and the event models and schema agree on every id."""
    assert is_valid_id(value) is valid
    event = {"photo_id": value, "session_id": "s", "object": {"bucket": "bkt", "key": "k"}}
    errors = list(_validator("photos.uploaded.v1.schema.json").iter_errors(event))
    assert (not errors) is valid
    if valid:
        PhotoUploaded.model_validate(event)
    else:
        with pytest.raises(ValueError):
            PhotoUploaded.model_validate(event)
