"""A running `facepass serve --target all` against the session's embedded stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from libs.common.settings import Settings
from tests.support.processes import ServerProcess, facepass_serve


@pytest.fixture(scope="session")
def server(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with facepass_serve(stack, tmp_path_factory.mktemp("server-logs")) as process:
        yield process
