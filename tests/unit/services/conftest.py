"""Fixtures of the services' unit tests: fakes for every server (tests/support/fakes.py)."""

from __future__ import annotations

import pytest

from tests.support.fake_db import FakePhotoDb
from tests.support.fakes import FakeEngine, FakeObjectStore


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> FakePhotoDb:
    fake = FakePhotoDb()
    fake.install(monkeypatch)
    return fake


@pytest.fixture
def store() -> FakeObjectStore:
    return FakeObjectStore()


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()
