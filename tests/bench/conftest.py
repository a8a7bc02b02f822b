"""Smoke runs of the benchmark suites on tiny inputs, on the test session's embedded stack: they
prove the harness works and writes well-formed results; they never check a speed."""

from __future__ import annotations

import numpy as np
import pytest

from bench import data
from bench.harness import Bench, isolated
from bench.protocols.event_photos import EpParams
from bench.protocols.lfw_events import Scores
from libs.common.settings import Settings
from tests.support.data import REPO

LFW = REPO / ".." / "shared" / "datasets" / "lfw-dev"
TINY = data.EventsParams(max_ids=6, cap=4, n_distractors=6)
SMOKE_EP, SMOKE_EP_PHOTOS = EpParams(attendees=4, distractors=4), 2  # the EP smoke run's draw

needs_lfw = pytest.mark.skipif(not data.lfw_available(LFW), reason=f"no dataset at {LFW}")


def one_selfie_scores(relevant: list[float], irrelevant: list[float]) -> Scores:
    """One selfie against one photo per similarity: the `relevant` ones show the selfie's
    identity, the `irrelevant` ones do not."""
    similarity = np.array([[*relevant, *irrelevant]], np.float32)
    truth = np.array([[True] * len(relevant) + [False] * len(irrelevant)])
    return Scores(["someone"], similarity, truth, [], len(relevant) + len(irrelevant))


@pytest.fixture(scope="session")
def bench(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Bench:
    bench = Bench(isolated(stack), tmp_path_factory.mktemp("bench-logs"), mode="test")
    bench.prepare()  # `facepass init`: the bench's own topics
    return bench


@pytest.fixture(scope="session")
def collected() -> dict[str, dict[str, object]]:
    """Results of the smoke runs, for the report smoke test."""
    return {}
