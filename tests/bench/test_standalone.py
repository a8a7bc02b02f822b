"""P3, P4, P5 and the report: suites that start their own processes or none (P5's scoring
and report without the peer: test_peer.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bench import data, goals, marathon, markdown, notify, peer, pipeline, plots, report, vectors
from bench.harness import Bench
from tests.bench.conftest import LFW, SMOKE_EP, SMOKE_EP_PHOTOS, TINY, needs_lfw
from tests.support.data import REPO


def test_vector_scale(bench: Bench, collected: dict[str, Any]) -> None:
    plan = vectors.Plan(sessions=2, faces_per_session=50, big_session_faces=200, queries=5)
    result = asyncio.run(vectors.run(bench.settings, plan, progress=print))
    assert result["total_faces"] == 300
    assert result["small_sessions"]["recall"] == 1.0
    assert result["big_session"]["recall"] == 1.0
    assert result["big_session_memory"]["recall"] == 1.0
    assert result["big_session_memory"]["megabytes"] > 0
    collected["vectors"] = result


def test_marathon(bench: Bench, collected: dict[str, Any]) -> None:
    """P3m's suite on a small session: searched while indexed into, every answer exact."""
    plan = marathon.Plan(faces=4000, photos_per_s=5, seconds=3)
    result = asyncio.run(marathon.run(bench.settings, plan, progress=print))
    run = result["while_indexing"]
    assert run["queries"] > 10 and run["exact"] == 1 and run["recall"] == 1.0
    assert run["photos_written"] >= 10
    assert result["searchable_after"]["photos"] >= 5
    assert result["matrix"]["megabytes"] > 0
    collected["marathon"] = result


def test_notify(bench: Bench, collected: dict[str, Any]) -> None:
    """N1's suite, small: matching costs and delays are measured, every new photo matched."""
    result = notify.run(bench, print, subscriptions=50, photos=10, new_photos=2)
    cost, delay = result["matching"], result["matched_after_indexed"]
    assert cost["photos_matched"] == 1  # the one photo of ten that shows a subscriber
    assert cost["with_subscriptions"]["p95_ms"] > 0 and cost["without"]["p95_ms"] > 0
    assert delay["photos"] == 2 and delay["matched"] == 2 and delay["p95_s"] >= 0
    collected["notify"] = result


@pytest.mark.slow  # three embedder starts and a ~17 s rebalance on tansu: ~50 s
def test_scale_out(bench: Bench, collected: dict[str, Any]) -> None:
    result = pipeline.scale_out(bench, data.event_photos(LFW, 4, TINY), progress=print)
    assert result["one_embedder"]["indexed"] == 4
    assert result["two_embedders"]["indexed"] == 4
    assert len(result["two_embedders"]["embedder_cpu_s"]) == 2
    assert result["ratio"] > 0
    collected["scale"] = result


@needs_lfw
@pytest.mark.skipif(
    not (peer.PEER_VENV / "bin" / "python").exists(),
    reason="no peer virtualenv (made by `python -m bench peer`)",
)
def test_peer_on_tiny_draw(collected: dict[str, Any]) -> None:
    ours = collected.get("accuracy", {}).get("lfw_events")
    if ours is None:
        pytest.skip("needs the accuracy smoke run of this session")
    python = peer.ensure_venv()
    result = peer.run(LFW, TINY, ours, python=python, timeout_s=300, progress=print)
    assert result["peer"]["photos"] == len(data.events(LFW, TINY).collages)
    assert result["speed_ratio_per_cpu_s"] > 0
    ep = collected.get("ep")
    if ep is not None:  # the EP smoke run's two 12 MP photos: ~15 s of the peer
        result["ep"] = peer.run_ep(
            LFW, SMOKE_EP, SMOKE_EP_PHOTOS, ep, python=python, timeout_s=300, progress=print
        )
        assert result["ep"]["peer"]["photos"] == SMOKE_EP_PHOTOS
        assert result["ep"]["speed_ratio_per_cpu_s"] > 0
    collected["peer"] = result


def test_report_from_smoke_results(collected: dict[str, Any], tmp_path: Path) -> None:
    assert collected, "the smoke suites above produced nothing"
    for suite, result in collected.items():
        report.save(suite, result, tmp_path)
    written = markdown.write(tmp_path / "benchmarks.md", tmp_path)
    text = (tmp_path / "benchmarks.md").read_text()
    assert "## Targets" in text
    for suite, result in collected.items():
        assert report.headline(suite, result) != ""
    # Each suite that ran has its section (the P4 smoke is slow: it runs only with -m slow).
    sections = {
        "vectors": "## P3", "marathon": "## P3m", "notify": "## N1", "scale": "## P4",
        "pipeline": "## P1", "calibration": "## A1 over many draws",
        "multi-selfie": "## Several selfies",
    }  # fmt: skip
    for suite, heading in sections.items():
        if suite in collected:
            assert heading in text, suite
    if plots.available() and {"accuracy", "load", "pipeline"} & set(collected):
        assert any(p.suffix == ".png" for p in written)


def test_report_from_committed_results(tmp_path: Path) -> None:
    """docs/bench/*.json as committed render into a report that names every target."""
    folder = REPO / "docs" / "bench"
    results = report.load_all(folder)
    if not results:
        pytest.skip("no committed results")
    text = markdown.render(results, [])
    for check in goals.evaluate(results):
        assert f"| {check.id} |" in text
    for result in results.values():
        assert result["command"] in text
    json.dumps(results)  # plain JSON throughout


def test_bench_commands_are_registered() -> None:
    from typer.testing import CliRunner

    from bench.cli import SUITES, app

    out = CliRunner().invoke(app, ["--help"], terminal_width=200).output
    for name in (*SUITES, "all", "report", "faces", "eval", "eval-crowd"):
        assert name in out
    bad = CliRunner().invoke(app, ["all", "--skip", "nonsense"])
    assert bad.exit_code == 2
