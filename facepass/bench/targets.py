"""BENCHMARKS.md's targets checked against the saved results: one `Check` per target, used by
the report's summary table and by the one-line headlines the CLI prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Results = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Check:
    id: str
    what: str
    target: str
    measured: str
    met: bool | None  # None: not measured


def _level(results: Results, c: int, kind: str) -> dict[str, Any] | None:
    for level in results.get("load", {}).get("levels", []):
        if level["connections"] == c:
            return dict(level[kind])
    return None


def server_errors(run: dict[str, Any]) -> int:
    """Failures the server or the network caused (a 422 for a selfie without a face is the
    selfie's fault and counted apart; 429s are counted apart)."""
    return int(run["socket_errors"] + run["timeouts"] + run["status_other"])


def _a1(r: Results) -> Check:
    what, target = "LFW-Events via HTTP at the shipped threshold", "P ≥ 0.995, R ≥ 0.98"
    ev = r.get("accuracy", {}).get("lfw_events")
    if not ev:
        return Check("A1", what, target, "not measured", None)
    at = ev["at_threshold"]
    return Check(
        "A1",
        what,
        target,
        f"P {at['precision']:.4f}, R {at['recall']:.4f} at {at['threshold']:.2f}",
        at["precision"] >= 0.995 and at["recall"] >= 0.98,
    )


def _a2(r: Results) -> Check:
    what = "LFW-Crowd 24 MP: detection recall; identification (library)"
    target = "≥ 0.99; ≥ 0.95"
    runs = r.get("crowd", {}).get("runs")
    if not runs:
        return Check("A2", what, target, "not measured", None)
    recall = min(x["detection_recall"] for x in runs)
    ident = min(x["best_face_correct"] for x in runs)
    sizes = "/".join(str(x["face_size"]) for x in runs)
    return Check(
        "A2", what, target, f"{recall:.3f}; {ident:.3f} (worst of T={sizes})",
        recall >= 0.99 and ident >= 0.95,
    )  # fmt: skip


def _p1(r: Results) -> Check:
    what, target = "end-to-end ÷ raw engine photos/s", "≥ 0.85"
    p = r.get("pipeline")
    if not p:
        return Check("P1", what, target, "not measured", None)
    return Check("P1", what, target, f"{p['ratio']:.2f}", p["ratio"] >= 0.85)


def _p2(r: Results) -> Check:
    what, target = "c=10 distinct selfies: p95; errors", "≤ 250 ms; 0"
    run = _level(r, 10, "uncached")
    if not run:
        return Check("P2", what, target, "not measured", None)
    errors = server_errors(run)
    return Check(
        "P2",
        what,
        target,
        f"{run['p95_ms']:.0f} ms; {errors}",
        run["p95_ms"] <= 250 and errors == 0,
    )


def _p2b(r: Results) -> Check:
    what, target = "c=10 repeated selfie (cached): p95", "≤ 15 ms"
    run = _level(r, 10, "cached")
    if not run:
        return Check("P2b", what, target, "not measured", None)
    return Check("P2b", what, target, f"{run['p95_ms']:.1f} ms", run["p95_ms"] <= 15)


def _p3(r: Results) -> Check:
    what, target = "per-session query p95; recall", "≤ 20 ms; 1.0"
    v = r.get("vectors")
    if not v:
        return Check("P3", what, target, "not measured", None)
    # What the search API runs: SQL for ordinary sessions, the in-memory matrix for huge ones.
    small = v["small_sessions"]
    big: dict[str, Any] = v.get("big_session_memory") or v["big_session"]
    return Check(
        "P3",
        what,
        target,
        f"{small['p95_ms']:.0f} ms (1k-face sessions), {big['p95_ms']:.0f} ms (100k"
        f"{', in memory' if 'big_session_memory' in v else ''}); "
        f"recall {min(small['recall'], big['recall']):.3f}",
        max(small["p95_ms"], big["p95_ms"]) <= 20 and min(small["recall"], big["recall"]) >= 1,
    )


def _p4(r: Results) -> Check:
    what, target = "2 embedders ÷ 1 (1 thread each)", "≥ 1.8"
    s = r.get("scale")
    if not s:
        return Check("P4", what, target, "not measured", None)
    return Check("P4", what, target, f"{s['ratio']:.2f}", s["ratio"] >= 1.8)


def _p5(r: Results) -> Check:
    what, target = "ours ÷ dlib photos per CPU-second; F1 higher", "≥ 4; yes"
    p = r.get("peer")
    if not p:
        return Check("P5", what, target, "not measured", None)
    ratio = p["speed_ratio_per_cpu_s"]
    f1 = f"F1 {p['ours']['f1']:.3f} vs {p['peer']['at_tolerance']['f1']:.3f}"
    return Check("P5", what, target, f"{ratio:.2f}; {f1}", ratio >= 4 and bool(p["f1_higher"]))


CHECKS: list[Callable[[Results], Check]] = [_a1, _a2, _p1, _p2, _p2b, _p3, _p4, _p5]
BY_SUITE = {
    "accuracy": ["A1"],
    "crowd": ["A2"],
    "pipeline": ["P1"],
    "load": ["P2", "P2b"],
    "vectors": ["P3"],
    "scale": ["P4"],
    "peer": ["P5"],
}


def evaluate(results: Results) -> list[Check]:
    return [check(results) for check in CHECKS]


def verdict(check: Check) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[check.met]
