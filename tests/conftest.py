"""Test harness: one embedded real stack (PostgreSQL+pgvector, S3, Kafka broker, Valkey) per
test session, on free ports in a temporary state directory, torn down at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from facepass.bootstrap import prepare_dependencies
from libs.common.settings import Settings
from libs.stack.stack import EmbeddedStack
from tests.support.stack import stack_settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a running, migrated embedded stack."""
    settings = stack_settings(tmp_path_factory.mktemp("stack"))
    embedded = EmbeddedStack(settings)
    embedded.start()
    try:
        prepare_dependencies(settings)
        yield settings
    finally:
        embedded.stop()
