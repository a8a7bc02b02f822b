"""Fixtures of the reliability suite.

`server` is a `facepass serve --target all` on the session's embedded stack, with topics and a
consumer group of its own (so it never takes work from the integration suite's server) and
CORS_ORIGINS set, for the tests that only need a running API.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from libs.common.settings import Settings
from tests.support.processes import ServerProcess, facepass_serve
from tests.support.reliability import Topics

ALLOWED_ORIGIN = "https://photos.allowed.example"


@pytest.fixture(scope="session")
def topics(stack: Settings) -> Topics:
    return Topics(stack, partitions=4)


@pytest.fixture(scope="session")
def server(
    stack: Settings, topics: Topics, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with facepass_serve(
        stack,
        tmp_path_factory.mktemp("reliability-server"),
        CORS_ORIGINS=ALLOWED_ORIGIN,
        **topics.env(),
    ) as process:
        yield process
