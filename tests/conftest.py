"""Test harness: one embedded real stack (PostgreSQL+pgvector, S3, Kafka broker, Valkey) per
test session, on free ports in a temporary state directory, torn down at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from facepass.bootstrap import prepare_dependencies
from libs.common.settings import Settings
from libs.stack.stack import EmbeddedStack
from tests.support.stack import private_state_dir, stack_settings


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    """Settings pointing at a running, migrated embedded stack."""
    with private_state_dir() as state_dir:
        settings = stack_settings(state_dir)
        embedded = EmbeddedStack(settings)
        embedded.start()
        try:
            prepare_dependencies(settings)
            yield settings
        finally:
            embedded.stop()
