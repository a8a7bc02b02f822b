"""The arithmetic of the calibration suite (bench/calibration.py): scores of many draws
aggregated per threshold (mean and worst draw), the rule that picks the default threshold, A1's
check, the dev half's coverage and what the ground-truth corrections changed. Pure, so
tests/bench/test_calibration.py checks it on synthetic scores."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import goals
from bench.protocols import coappearances, lfw_events
from bench.protocols.lfw_events import Scores

Row = dict[str, Any]

#: The shipped default must keep the worst draw's precision at A1's bound.
PRECISION_FLOOR = goals.BY_ID["A1m"].limit("worst_precision").value
RULE = (
    "the lowest threshold t of the sweep such that the worst draw's precision is "
    f">= {PRECISION_FLOOR} at t and at every higher threshold of the sweep"
)
#: What the rule is judged on.
RULE_TRUTH = "verified"


def across(draws: Mapping[int, Scores], threshold: float) -> Row:
    """Precision, recall and F1 at `threshold` over the draws (seed -> scores): the mean,
    the worst draw (and its seed), and the pairs summed."""
    at = {seed: lfw_events.metrics_at(scores, threshold) for seed, scores in draws.items()}
    worst_p = min(at, key=lambda seed: (at[seed]["precision"], seed))
    worst_r = min(at, key=lambda seed: (at[seed]["recall"], seed))
    return {
        "threshold": round(threshold, 4),
        "mean_precision": statistics.fmean(m["precision"] for m in at.values()),
        "worst_precision": at[worst_p]["precision"],
        "worst_precision_seed": worst_p,
        "mean_recall": statistics.fmean(m["recall"] for m in at.values()),
        "worst_recall": at[worst_r]["recall"],
        "worst_recall_seed": worst_r,
        "mean_f1": statistics.fmean(m["f1"] for m in at.values()),
        "tp": sum(int(m["tp"]) for m in at.values()),
        "fp": sum(int(m["fp"]) for m in at.values()),
        "fn": sum(int(m["fn"]) for m in at.values()),
    }


def sweep(draws: Mapping[int, Scores], thresholds: Sequence[float]) -> list[Row]:
    return [across(draws, t) for t in thresholds]


def pick(rows: Sequence[Row], floor: float = PRECISION_FLOOR) -> Row | None:
    """`RULE`: walking the sweep down from its highest threshold, the last row before the
    worst-draw precision first drops below `floor`; None when it is below at the top."""
    chosen: Row | None = None
    for row in sorted(rows, key=lambda r: r["threshold"], reverse=True):
        if row["worst_precision"] < floor:
            break
        chosen = row
    return chosen


def holding(rows: Sequence[Row], floor: float = PRECISION_FLOOR) -> list[tuple[float, float]]:
    """The runs of consecutive sweep thresholds at which the worst draw's precision is >=
    `floor`, as (lowest, highest), in order: where `pick` finds none, where it holds."""
    runs: list[tuple[float, float]] = []
    start: float | None = None
    ordered = sorted(rows, key=lambda r: r["threshold"])
    for i, row in enumerate(ordered):
        if row["worst_precision"] >= floor:
            start = row["threshold"] if start is None else start
            if i + 1 == len(ordered) or ordered[i + 1]["worst_precision"] < floor:
                runs.append((start, row["threshold"]))
                start = None
    return runs


def meets_a1(row: Row) -> bool:
    """A1's limits (worst-draw precision, mean recall) on an `across` row."""
    return all(limit.ok(row[limit.key]) for limit in goals.BY_ID["A1m"].limits)


def coverage(
    used_attendees: Iterable[Iterable[str]],
    used_distractors: Iterable[Iterable[str]],
    attendee_pool: Sequence[str],
    distractor_pool: Sequence[str],
) -> dict[str, Any]:
    """How much of the pools at least one draw used (each draw: its attendees, its
    distractors)."""
    attendees = set(attendee_pool).intersection(n for names in used_attendees for n in names)
    distractors = set(distractor_pool).intersection(n for names in used_distractors for n in names)

    def share(used: set[str], pool: Sequence[str]) -> float:
        return len(used) / len(pool) if pool else 0.0

    return {
        "attendees_used": len(attendees),
        "attendee_pool": len(attendee_pool),
        "attendee_share": share(attendees, attendee_pool),
        "distractors_used": len(distractors),
        "distractor_pool": len(distractor_pool),
        "distractor_share": share(distractors, distractor_pool),
    }


def thresholds_up_to(top: float | None) -> list[float]:
    """The sweep's thresholds, those <= `top` only when given."""
    return [t for t in lfw_events.default_thresholds() if top is None or t <= top + 1e-9]


def row_at(result: Mapping[str, Any], threshold: float) -> Row | None:
    """The sweep row of an `aggregate` at `threshold` (None when its sweep stops below)."""
    return next((r for r in result["sweep"] if abs(r["threshold"] - threshold) < 1e-9), None)


def aggregate(draws: Mapping[int, Scores], shipped: float, top: float | None = None) -> Row:
    """The sweep over the draws (up to `top` when given), the rule's pick and A1 at the
    shipped threshold (None above `top`) and at the pick."""
    rows = sweep(draws, thresholds_up_to(top))
    chosen = pick(rows)
    at_shipped = across(draws, shipped) if top is None or shipped <= top + 1e-9 else None
    return {
        "draws": len(draws),
        "shipped_threshold": shipped,
        "rule": RULE,
        "precision_floor": PRECISION_FLOOR,
        "sweep_top": top,
        "pick": chosen,
        "holding": holding(rows),
        "at_shipped": at_shipped,
        "a1_at_shipped": meets_a1(at_shipped) if at_shipped else None,
        "a1_at_pick": meets_a1(chosen) if chosen else None,
        "sweep": rows,
    }


def corrections(
    labelled: Mapping[int, Scores], verified: Mapping[int, Scores], shipped: float
) -> dict[str, Any]:
    """What the verified truth changed over the draws (the same similarities, two truths): the
    pairs it adds, and at the shipped threshold the false positives it removes (they become
    true matches) and the added pairs that were not returned (they become misses)."""
    added = removed = missed = 0
    fp_labelled = fp_verified = 0
    for seed, scores in labelled.items():
        other = verified[seed]
        returned = scores.similarity >= shipped
        new = other.relevant & ~scores.relevant
        if (scores.relevant & ~other.relevant).any():
            raise ValueError(f"draw {seed}: the verified truth drops a labelled pair")
        added += int(new.sum())
        removed += int((new & returned).sum())
        missed += int((new & ~returned).sum())
        fp_labelled += int((returned & ~scores.relevant).sum())
        fp_verified += int((returned & ~other.relevant).sum())
    return {
        "file": coappearances.LFW_DEV.relative_to(Path(__file__).parent.parent).as_posix(),
        "pairs_added": added,
        "threshold": shipped,
        "fp_removed": removed,
        "added_missed": missed,
        "fp_as_labelled": fp_labelled,
        "fp_verified": fp_verified,
    }
