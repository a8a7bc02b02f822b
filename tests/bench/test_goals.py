"""The goals table (bench/goals.py) and the report text made from it: no servers, no suites."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bench import goals, markdown, report, sections
from tests.support.data import REPO

COMMITTED = REPO / "docs" / "bench"


def _machine(cores: int) -> dict[str, Any]:
    return {"cpu": "Test CPU", "cores": cores, "system": "Linux", "python": "3.11"}


def _vectors(p95_ms: float, recall: float = 1.0) -> dict[str, Any]:
    run = {"p95_ms": p95_ms, "recall": recall}
    return {"machine": _machine(2), "small_sessions": run, "big_session_memory": run}


def _scale(cores: int, ratio: float) -> dict[str, Any]:
    one = {"indexed": 8, "wall_s": 2.0, "photos_per_s": 4.0, "embedder_cpu_s": [2.0]}
    two = {**one, "photos_per_s": 4.0 * ratio, "embedder_cpu_s": [1.0, 1.0]}
    stages = {"ms_per_photo": {"embed": 70.0}}
    return {
        "machine": _machine(cores),
        "measured_at": "2026-12-01T00:00:00+00:00",
        "command": "python -m bench scale",
        "bench": {"stack": "private"},
        "photos": 8,
        "partitions": 12,
        "one_embedder": one,
        "two_embedders": two,
        "ratio": ratio,
        "stages_one": stages,
        "stages_two": stages,
    }


def _accuracy(precision: float, recall: float) -> dict[str, Any]:
    at = {"threshold": 0.36, "precision": precision, "recall": recall}
    return {"machine": _machine(2), "lfw_events": {"at_threshold": at}}


def test_limits_read_as_benchmarks_md_writes_them() -> None:
    assert goals.Limit("p95_ms", "<=", 250, "p95", "ms").text() == "p95 ≤ 250 ms"
    assert goals.Limit("ratio", ">=", 1.8).text() == "≥ 1.8"
    assert goals.Limit("f1_margin", ">", 0.0, says="F1 higher").text() == "F1 higher"
    assert goals.BY_ID["P4"].limits_text == "≥ 1.8 on a machine with ≥ 4 cores"
    shortfall = goals.Limit("mean_recall", ">=", 0.99, "mean recall").shortfall(0.9853)
    assert shortfall == "mean recall 0.9853 (goal ≥ 0.99)"


def test_each_goal_is_declared_once_and_read_by_its_suite() -> None:
    ids = [goal.id for goal in goals.GOALS]
    assert len(ids) == len(set(ids))
    for goal in goals.GOALS:
        assert (goal.suite is None) == (goal.read is None), goal.id
    assert [g.id for g in goals.for_suite("load")] == ["P2", "P2s", "P2b"]


def test_a_met_goal_makes_a_met_row() -> None:
    check = goals.check_of("P3", {"vectors": _vectors(2.0)})
    assert check.met is True
    row = markdown.summary_row(check)
    assert row.startswith("| P3 | per-session query")
    assert "| p95 ≤ 20 ms; recall vs brute force = 1.0 |" in row
    assert row.endswith("| met |")


def test_a_missed_goal_makes_a_missed_row_and_says_by_how_much() -> None:
    check = goals.check_of("P3", {"vectors": _vectors(25.0)})
    assert check.met is False
    assert markdown.summary_row(check).endswith("| **missed** |")
    assert check.shortfalls() == ["p95 25 ms (goal ≤ 20 ms)"]
    assert sections.missed(check) == "**P3 missed**: p95 25 ms (goal ≤ 20 ms)."


def test_goals_without_results_are_not_measured() -> None:
    for check in goals.evaluate({}):
        assert check.met is None
        row = markdown.summary_row(check)
        assert row.endswith("| not measured |"), row
        if check.goal.suite is None:
            assert f"| {check.goal.note} |" in row
        else:
            assert "| not run |" in row


def test_one_draw_is_shown_as_one_draw() -> None:
    """A1 asks for 20 draws; a result of one is read as one, met only on that one."""
    good = goals.check_of("A1", {"accuracy": _accuracy(0.998, 0.995)})
    assert good.measured.startswith("one draw: P 0.9980, R 0.9950")
    assert good.met is None
    assert good.verdict == "met on one draw only"
    bad = goals.check_of("A1", {"accuracy": _accuracy(0.9967, 0.9853)})
    assert bad.met is False
    assert sections.missed(bad) == "**A1 missed** (on one draw): mean recall 0.9853 (goal ≥ 0.99)."


@pytest.mark.parametrize(("cores", "verdict"), [(2, "not judged: 2 cores (needs ≥ 4)"), (8, "met")])
def test_the_machine_of_the_result_decides_a_goal_that_needs_cores(
    cores: int, verdict: str
) -> None:
    check = goals.check_of("P4", {"scale": _scale(cores, 1.9)})
    assert check.verdict == verdict
    text = "\n".join(sections.scale({"scale": _scale(cores, 1.2)}, set()))
    assert f"({cores} cores, Linux)" in text  # the provenance line
    assert f"The machine has {cores} cores for two inference threads" in text


def test_core_counts_in_the_report_come_from_the_results() -> None:
    results = report.load_all(COMMITTED)
    if not results:
        pytest.skip("no committed results")
    eight = copy.deepcopy(results)
    for result in eight.values():
        result["machine"]["cores"] = 8
    eight["load"]["model_bound"]["cores"] = 8  # recorded by the load suite as well
    if eight["load"].get("phone"):
        eight["load"]["phone"]["model_bound"]["cores"] = 8  # and by its phone-selfie level
    if "ep" in eight:
        eight["ep"]["p1"]["cores"] = 8  # and by the EP suite, for its P1 ratio
    text = markdown.render(eight, [])
    assert "2 cores" not in text
    assert "2-core" not in text
    assert "on the 8-core machine below" in text
    assert "8 cores" in text


def test_recorded_commands_are_labelled_as_what_was_run() -> None:
    assert report.rerun_command("facepass bench all") == "python -m bench all"
    assert report.rerun_command("facepass eval-crowd D --face-size 100") == (
        "python -m bench eval-crowd D --face-size 100"
    )
    assert report.rerun_command("python -m bench all") is None
    result = {"command": "facepass bench all"}
    assert sections.ran(result) == "run as `facepass bench all` (today: `python -m bench all`)"
    results = report.load_all(COMMITTED)
    text = markdown.render(results, [])
    for line in text.splitlines():
        if "facepass bench" in line:
            assert "run as `facepass bench" in line, line


def test_headlines_name_the_goals_of_the_suite() -> None:
    line = report.headline("scale", _scale(2, 1.25))
    assert line == "P4 1.25 on 2 cores (not judged: 2 cores (needs ≥ 4))"
    assert report.headline("vectors", _vectors(25.0)).endswith("(missed)")
    assert report.headline("faces", {}) == "done"


def _phone_load(p95_ms: float, timeouts: int) -> dict[str, Any]:
    run = {"p95_ms": p95_ms, "socket_errors": 0, "timeouts": timeouts, "status_other": 0}
    return {"levels": [], "phone": {"selfies": 60, "uncached": run}}


def test_p2_reads_the_phone_selfie_level_of_the_load_suite() -> None:
    assert goals.check_of("P2", {"load": {"levels": []}}).met is None  # a run without it
    good = goals.check_of("P2", {"load": _phone_load(210.0, 0)})
    assert good.met is True and good.measured.startswith("210 ms; 0 errors")
    bad = goals.check_of("P2", {"load": _phone_load(320.0, 2)})
    assert bad.met is False
    assert bad.shortfalls() == ["p95 320 ms (goal ≤ 250 ms)", "errors 2 (goal = 0)"]


def _ep_draws(worst_precision: float, mean_recall: float, draws: int) -> dict[str, Any]:
    at = {"threshold": 0.36, "worst_precision": worst_precision, "mean_recall": mean_recall}
    return {"a3_draws": {"draws": draws, "at_shipped": at, "pick": None, "photos_per_draw": 30}}


def test_a3m_reads_the_ep_suites_draws_like_a1m() -> None:
    assert goals.check_of("A3m", {"ep": {"a3": {}}}).met is None  # a run without draws
    good = goals.check_of("A3m", {"ep": _ep_draws(0.996, 0.992, 20)})
    assert good.met is True
    assert good.measured.startswith("20 draws: worst P 0.9960, mean R 0.9920 at 0.36")
    assert good.measured.endswith("(30 photos per draw)")
    bad = goals.check_of("A3m", {"ep": _ep_draws(0.990, 0.985, 20)})
    assert bad.met is False and len(bad.shortfalls()) == 2
    few = goals.check_of("A3m", {"ep": _ep_draws(0.996, 0.992, 2)})
    assert few.met is None  # two draws are not the goal's twenty
