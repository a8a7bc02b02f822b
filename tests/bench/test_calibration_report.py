"""The calibration suite's result as its readers see it: the A1m goal reading it, and the report
section (bench/sections_calibration.py) showing the rule, the pick, the corrections and the
variants; on small synthetic results, no server (tests/bench/test_calibration.py checks the
aggregation that makes them)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from bench import calibration, calibration_rule, goals, readings, sections_calibration
from bench.protocols.lfw_events import Scores
from tests.bench.conftest import one_selfie_scores


def _per_draw(seed: int, labelled: Scores, verified: Scores) -> dict[str, Any]:
    tiles = [[f"tile{i}"] for i in range(labelled.similarity.shape[1])]
    images = [[f"images/tile{i}/tile{i}_0001.jpg"] for i in range(labelled.similarity.shape[1])]
    fps = calibration.false_positives(labelled, 0.36, tiles, images)
    remaining = calibration.false_positives(verified, 0.36, tiles, images)
    return {
        "seed": seed,
        "photos": labelled.similarity.shape[1],
        "pairs": int(labelled.relevant.sum()),
        "pairs_verified": int(verified.relevant.sum()),
        "at_shipped": calibration._at(labelled, 0.36),
        "at_shipped_verified": calibration._at(verified, 0.36),
        "false_positives": remaining,
        "corrected": [{**fp, "shown_in": fp["images"]} for fp in fps if fp not in remaining],
    }


def _result(
    draws: int,
    scores: dict[int, Scores] | None = None,
    verified: dict[int, Scores] | None = None,
    variants: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A calibration result as `calibration.run` assembles it. Each draw by default: 50
    positives at 0.9, one at 0.33 (missed at 0.36), a false positive below 0.11."""
    scores = scores or {
        seed: one_selfie_scores([0.9] * 50 + [0.33], [0.105]) for seed in range(1, draws + 1)
    }
    verified = verified or scores
    on_verified = calibration_rule.aggregate(verified, 0.36)
    coverage = calibration_rule.coverage([["a"]], [["x"]], ["a", "b"], ["x"])
    return {
        "machine": {"cpu": "Test CPU", "cores": 2, "system": "Linux", "python": "3.11"},
        "command": "python -m bench calibration",
        "bench": {"stack": "private"},
        "parameters": {"max_ids": 150, "cap": 8, "n_distractors": 300, "seeds": list(scores)},
        "pack": "test-pack",
        "draws": len(scores),
        "shipped_threshold": 0.36,
        "rule": calibration_rule.RULE,
        "rule_truth": calibration_rule.RULE_TRUTH,
        "precision_floor": calibration_rule.PRECISION_FLOOR,
        "pick": on_verified["pick"],
        "a1_at_pick": on_verified["a1_at_pick"],
        "verified": on_verified,
        "as_labelled": calibration_rule.aggregate(scores, 0.36),
        "corrections": {
            **calibration_rule.corrections(scores, verified, 0.36),
            "images_listed": 12,
        },
        "coverage": coverage,
        "photos": 52 * len(scores),
        "pairs": sum(int(x.relevant.sum()) for x in scores.values()),
        "pairs_verified": sum(int(x.relevant.sum()) for x in verified.values()),
        "search": {"searches": 150, "p50_ms": 41.0, "p95_ms": 60.0, "expanded": 0},
        "base_wall_s": 10.0,
        "variants": variants or {},
        "wall_s": 12.0,
        "per_draw": [_per_draw(s, x, verified[s]) for s, x in scores.items()],
    }


def test_a1m_reads_the_calibration_result() -> None:
    full = goals.check_of("A1m", {"calibration": _result(20)})
    assert full.measured.startswith("20 draws: worst P 1.0000, mean R 0.9804 at 0.36 as labelled")
    assert "(verified truth: worst P 1.0000, mean R 0.9804)" in full.measured
    assert full.measured.endswith("on the verified truth the rule picks 0.11")
    assert full.met is False
    assert full.shortfalls() == ["mean recall 0.9804 (goal ≥ 0.99)"]
    few = goals.check_of(
        "A1m",
        {
            "calibration": _result(
                2, {1: one_selfie_scores([0.9], []), 2: one_selfie_scores([0.8], [0.1])}
            )
        },
    )
    assert few.met is None and few.verdict == "met on 2 draws only"
    one = goals.check_of("A1m", {"calibration": _result(1, {1: one_selfie_scores([0.9], [])})})
    assert one.verdict == "met on 1 draw only"
    assert goals.check_of("A1m", {}).measured == "not run"


def test_a1m_is_judged_as_labelled_and_reads_results_saved_before_the_two_truths() -> None:
    # As labelled, the draws' false positive at 0.5 costs precision; verified, it is a match.
    labelled = {s: one_selfie_scores([0.9] * 50, [0.5]) for s in (1, 2)}
    verified = {s: replace(x, relevant=np.ones((1, 51), bool)) for s, x in labelled.items()}
    result = _result(2, labelled, verified)
    reading = readings.a1_draws(result)
    assert reading is not None
    assert reading.values["worst_precision"] == pytest.approx(50 / 51)
    assert "(verified truth: worst P 1.0000, mean R 1.0000)" in reading.text
    old = {k: v for k, v in result.items() if k not in ("verified", "as_labelled")}
    old |= {"at_shipped": result["as_labelled"]["at_shipped"]}
    before = readings.a1_draws(old)
    assert before is not None and before.text.endswith("at 0.36; the rule picks 0.10")


def test_the_report_section_shows_the_rule_the_pick_and_the_table() -> None:
    text = "\n".join(sections_calibration.calibration({"calibration": _result(20)}, set()))
    assert "the lowest threshold t of the sweep such that the worst draw's precision" in text
    assert "**The rule** on the verified truth: the default is" in text
    assert "It picks **0.11** (worst-draw precision 1.0000, mean recall 1.0000 there)" in text
    assert "The worst draw's precision is ≥ 0.995 at 0.11-0.70 of the sweep." in text
    assert "As labelled it is ≥ 0.995 at 0.11-0.70 and the rule would pick 0.11." in text
    rows = [line for line in text.splitlines() if line.startswith("| 0.")]
    assert [line.split(" ")[1] for line in rows] == [f"{t / 100:.2f}" for t in range(26, 41)]
    assert any(line.startswith("| 0.36 (**shipped**) |") for line in rows)
    assert "on the verified truth met" not in text
    assert "at the shipped 0.36: on the verified truth **not met** (worst P 1.0000" in text
    assert "as labelled (what A1m reads) **not met** (worst P 1.0000, mean R 0.9804)" in text
    assert "(**pick**)" not in text  # 0.11 is outside the table's 0.26-0.40
    assert "1 of its 2 attendee identities (≥ 3 images, 50.0%)" in text
    assert "**A1m missed**: mean recall 0.9804 (goal ≥ 0.99)." in text
    assert "private stack; run as `python -m bench calibration`" in text
    assert "adds 0 pairs; at the shipped 0.36 it turns **0 of the 0 false positives**" in text
    assert "Search-side variants" not in text  # none ran


def test_the_report_shows_what_the_corrections_removed() -> None:
    # Draw 2's photo at 0.95 is, verified, a true match: as labelled it is a false positive at
    # every threshold of the sweep.
    labelled = {1: one_selfie_scores([0.9] * 50, []), 2: one_selfie_scores([0.9] * 50, [0.95, 0.2])}
    verified = {
        1: labelled[1],
        2: replace(labelled[2], relevant=np.array([[True] * 50 + [True, False]])),
    }
    text = "\n".join(
        sections_calibration.calibration({"calibration": _result(2, labelled, verified)}, set())
    )
    assert "it turns **1 of the 1 false positives** into true matches (0 remain)" in text
    assert "As labelled it is ≥ 0.995 at no threshold and the rule would pick none." in text
    assert "It picks **0.21**" in text
    assert "| 2 | 52 | 50 (51) | 1.0000 | 0.9804 | 1.0000 | 1.0000 | 0 | 1 | 0 |" in text
    assert "- someone in `images/tile50/tile50_0001.jpg`: 1, 0.9500" in text
    header = next(line for line in text.splitlines() if line.startswith("| threshold"))
    assert "| labelled: mean P |" in header


def test_the_report_says_when_the_rule_picks_nothing() -> None:
    # Draw 2's false positive at 0.95 is returned at every threshold of the sweep.
    scores = {
        1: one_selfie_scores([0.9] * 50, []),
        2: one_selfie_scores([0.9] * 50 + [0.98], [0.95]),
    }
    result = _result(2, scores)
    assert result["pick"] is None and result["a1_at_pick"] is None
    check = goals.check_of("A1m", {"calibration": result})
    assert check.measured.endswith("; on the verified truth the rule picks none")
    text = "\n".join(sections_calibration.calibration({"calibration": result}, set()))
    assert "**No threshold of the sweep satisfies it**: at its top, 0.70, the worst draw " in text
    assert "(seed 2) has precision 0.9808, with 1 false positive over the draws" in text
    assert "no pick; as labelled" in text
    assert "The worst draw's precision is ≥ 0.995 at no threshold of the sweep." in text
    assert "The 1 most similar of the 1 false positives that remain on the verified truth" in text
    assert "- 0.9500, seed 2: someone → tile51 (photo 51)" in text


def test_the_report_compares_the_variants() -> None:
    base = {s: one_selfie_scores([0.9] * 50 + [0.33], [0.105]) for s in (1, 2)}
    better = {s: one_selfie_scores([0.9] * 50 + [0.37], [0.105]) for s in (1, 2)}  # found at 0.36

    def variant(draws: dict[int, Scores], top: float | None, expanded: int) -> dict[str, Any]:
        return {
            "env": {},
            "strict_threshold": top,
            "verified": calibration_rule.aggregate(draws, 0.36, top),
            "as_labelled": calibration_rule.aggregate(draws, 0.36, top),
            "search": {"searches": 102, "p50_ms": 44.4, "expanded": expanded},
            "wall_s": 3.0,
            "per_draw": [],
        }

    variants = {"flip": variant(better, None, 0), "expansion 0.5": variant(better, 0.5, 7)}
    text = "\n".join(
        sections_calibration.calibration(
            {"calibration": _result(2, base, variants=variants)}, set()
        )
    )
    assert "### Search-side variants on the same draws" in text
    table = [line for line in text.splitlines() if line.startswith("| variant")]
    assert table == [
        "| variant | pick | worst P | R | worst P at 0.36 | R at 0.36 | worst P at 0.32 "
        "| R at 0.32 | A1 at shipped | A1 at pick | expanded | p50 ms |"
    ]
    lines = text.splitlines()
    assert (
        "| base (shipped settings, `all` server) | 0.11 | 1.0000 | 1.0000 | 1.0000 | 0.9804 "
        f"| 1.0000 | 1.0000 | **not met** | met | {sections_calibration.NONE} | 41 |"
    ) in lines
    assert (
        "| flip | 0.11 | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 1.0000 | met | met | "
        f"{sections_calibration.NONE} | 44 |"
    ) in lines
    assert any(
        line.startswith("| expansion 0.5 (t ≤ 0.50) | 0.11 |") and "| 7 of 102 |" in line
        for line in lines
    )
    assert (
        "As labelled, the rule picks (worst P and mean R at 0.36): base 0.11 (worst P 1.0000, R "
        "0.9804); " in text
    )
    assert "expansion 0.5 0.11 (worst P 1.0000, R 1.0000)." in text


def test_the_variants_option_names_known_variants() -> None:
    import typer

    from bench import cli

    assert cli._variants(None, quick=False) == tuple(calibration.VARIANTS)
    assert cli._variants(None, quick=True) == ()
    assert cli._variants(["none"], quick=False) == ()
    assert cli._variants(["expansion 0.6,flip", "flip"], quick=False) == ("flip", "expansion 0.6")
    with pytest.raises(typer.Exit):
        cli._variants(["nonsense"], quick=False)
    for name in calibration.VARIANTS:  # the option's help names them all
        assert name in cli._CALIBRATION_VARIANTS_HELP
