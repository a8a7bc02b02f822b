"""The goals of ../shared/BENCHMARKS.md (its "Targets" table), each declared once, here, as data.

A `Goal` is an id, what is measured, its numeric limits, the suite whose saved result measures
it and how to read that result. Everything that states a goal is generated from this table: the
report's summary table, the one-line headlines the CLI prints, the sections' "missed" prose and
the plots' limit lines. (The word "target" is left to `facepass serve --target`.)

A reading may say how the run falls short of the goal's protocol (`scope`: one draw where many
are asked for, collages instead of EP-12); a goal may need a machine of a size (`min_cores`),
read from the machine the result records. Goals that no suite measures yet are listed as not
measured.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import readings
from bench.readings import Reader, Reading, cores

Results = dict[str, dict[str, Any]]

_OPS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    ">=": ("≥", operator.ge),
    "<=": ("≤", operator.le),
    ">": (">", operator.gt),
    "==": ("=", operator.eq),
}


@dataclass(frozen=True)
class Limit:
    """One bound on one value of a reading: `key op value`."""

    key: str
    op: str  # ">=", "<=", ">" or "=="
    value: float
    label: str = ""  # what BENCHMARKS.md calls the value ("p95", "mean recall")
    unit: str = ""
    says: str = ""  # the whole text instead of the generated one ("F1 higher")

    def ok(self, measured: float) -> bool:
        return _OPS[self.op][1](measured, self.value)

    def bound(self) -> str:
        """'≤ 250 ms'"""
        return f"{_OPS[self.op][0]} {self.value}{f' {self.unit}' if self.unit else ''}"

    def text(self) -> str:
        """'p95 ≤ 250 ms', as a goal's text lists it."""
        if self.says:
            return self.says
        return f"{self.label} {self.bound()}" if self.label else self.bound()

    def shortfall(self, measured: float) -> str:
        """The limit missed, in words: 'mean recall 0.9853 (goal ≥ 0.99)'."""
        if self.says:
            return f"{self.says}: no ({self.key.replace('_', ' ')} {measured:.4g})"
        name = self.label or self.key.replace("_", " ")
        unit = f" {self.unit}" if self.unit else ""
        return f"{name} {measured:.4g}{unit} (goal {self.bound()})"


@dataclass(frozen=True)
class Goal:
    id: str
    what: str
    limits: tuple[Limit, ...]
    suite: str | None = None  # whose saved result measures it; None: no suite yet
    read: Reader | None = None
    where: str = ""  # appended to the limits' text ("on EP-12 and on LFW-Events")
    min_cores: int | None = None  # below it the figure is not meaningful
    note: str = "no suite yet"  # why it is not measured, when no saved result reads it

    @property
    def limits_text(self) -> str:
        text = "; ".join(limit.text() for limit in self.limits)
        if self.where:
            text += f" {self.where}"
        if self.min_cores:
            text += f" on a machine with ≥ {self.min_cores} cores"
        return text

    def limit(self, key: str) -> Limit:
        return next(limit for limit in self.limits if limit.key == key)


#: A1's draws (BENCHMARKS.md "Many draws"): the accuracy suite saves one draw, the
#: calibration suite this many (A1m).
A1_DRAWS = readings.A1_DRAWS


# --- the table ------------------------------------------------------------------------------


_P95 = "p95"
#: A1's limits: one draw (the accuracy suite) and many (the calibration suite, A1m).
_A1_LIMITS = (
    Limit("worst_precision", ">=", 0.995, "worst-draw precision"),
    Limit("mean_recall", ">=", 0.99, "mean recall"),
)
GOALS: tuple[Goal, ...] = (
    Goal(
        "A1",
        f"LFW-Events through the HTTP API at the shipped default, ≥ {A1_DRAWS} draws of the "
        "dev half",
        _A1_LIMITS,
        "accuracy",
        readings.a1,
    ),
    Goal(
        "A1m",
        f"A1 over many draws: LFW-Events through the HTTP API at the shipped default, "
        f"≥ {A1_DRAWS} seeded draws of the dev half, each in its own session",
        _A1_LIMITS,
        "calibration",
        readings.a1_draws,
    ),
    Goal(
        "A2",
        "LFW-Crowd 24 MP, faces ≥ 40 px: detection recall; identification by selfie (engine, "
        "embedder's decode)",
        (Limit("detection_recall", ">=", 0.99), Limit("identification", ">=", 0.95)),
        "crowd",
        readings.a2,
    ),
    Goal(
        "A3",
        "EP-12 through the HTTP API at the shipped default",
        (Limit("precision", ">=", 0.995, "precision"), Limit("recall", ">=", 0.99, "recall")),
        "ep",
        readings.a3,
    ),
    Goal(
        "A3m",
        f"A3 over many draws: EP-12 through the HTTP API at the shipped default, ≥ {A1_DRAWS} "
        "seeded draws, each in its own session",
        _A1_LIMITS,
        "ep",
        readings.a3_draws,
    ),
    Goal(
        "P1",
        "EP-12 end-to-end photos/s ÷ (cores x raw engine single-thread photos/s, same photos, "
        "same run)",
        (Limit("ratio", ">=", 0.85),),
        "ep",
        readings.p1_ep,
    ),
    Goal(
        "P2",
        "search at c=10, distinct 12 MP phone selfies (uncached): p95; errors",
        (Limit("p95_ms", "<=", 250, _P95, "ms"), Limit("errors", "==", 0, "errors")),
        "load",
        readings.p2,
    ),
    Goal(
        "P2s",
        "search at c=10, distinct 250 px selfies (uncached): p95",
        (Limit("p95_ms", "<=", 120, _P95, "ms"),),
        "load",
        readings.p2s,
    ),
    Goal(
        "P2b",
        "search at c=10, repeated selfie (cached): p95",
        (Limit("p95_ms", "<=", 15, _P95, "ms"),),
        "load",
        readings.p2b,
    ),
    Goal(
        "P3",
        "per-session query: 1k-face sessions (1M faces in all) and one 100k-face session",
        (
            Limit("p95_ms", "<=", 20, _P95, "ms"),
            Limit("recall", "==", 1.0, "recall vs brute force"),
        ),
        "vectors",
        readings.p3,
    ),
    Goal(
        "P3m",
        "one 1M-face session searched while 5 photos/s are indexed into it",
        (
            Limit("p95_ms", "<=", 50, _P95, "ms"),
            Limit("exact", "==", 1, says="exact"),
            Limit("searchable_s", "<=", 2, "new photo searchable", "s"),
            Limit("process_gb", "<=", 1.2, "memory per search process", "GB"),
        ),
        "marathon",
        readings.p3m,
    ),
    Goal(
        "P4",
        "indexing photos/s with 2 embedder processes ÷ 1, each on its own core(s)",
        (Limit("ratio", ">=", 1.8),),
        "scale",
        readings.p4,
        min_cores=4,
    ),
    Goal(
        "P5",
        "ours end to end ÷ face_recognition (dlib) photos per CPU-second, same photos; F1",
        (Limit("speed_ratio", ">=", 10), Limit("f1_margin", ">", 0.0, says="F1 higher")),
        "peer",
        readings.p5,
        where="on EP-12 and on LFW-Events",
    ),
    Goal(
        "P6",
        "raw engine photos/s on EP-12, inference backend ÷ onnxruntime fp32 of the same "
        "models, same run",
        (Limit("ratio", ">=", 2.5),),
        "ep",
        readings.p6,
    ),
    Goal(
        "G1",
        "first paint of a 30-result gallery of 12 MP photos: image bytes fetched",
        (Limit("megabytes", "<=", 1.5, unit="MB"),),
    ),
    Goal(
        "N1",
        "a subscriber's match event after the photo's indexed event",
        (
            Limit("p95_s", "<=", 5, _P95, "s"),
            Limit("subscriptions_ms", "<=", 5, "10k subscriptions add", "ms per photo"),
        ),
        "notify",
        readings.n1,
    ),
)
BY_ID = {goal.id: goal for goal in GOALS}


def for_suite(suite: str) -> list[Goal]:
    return [goal for goal in GOALS if goal.suite == suite]


# --- checks: a goal against the saved results ---------------------------------------------------


@dataclass(frozen=True)
class Check:
    goal: Goal
    reading: Reading | None
    machine_cores: int | None = None

    @property
    def id(self) -> str:
        return self.goal.id

    @property
    def measured(self) -> str:
        if self.reading is not None:
            return self.reading.text
        return "not run" if self.goal.suite else self.goal.note

    @property
    def failed(self) -> list[Limit]:
        """The limits the reading does not meet."""
        if self.reading is None:
            return []
        return [lim for lim in self.goal.limits if not lim.ok(self.reading.values[lim.key])]

    @property
    def too_small(self) -> bool:
        """Measured on a machine with fewer cores than the goal needs."""
        need = self.goal.min_cores
        return bool(need and self.machine_cores is not None and self.machine_cores < need)

    @property
    def met(self) -> bool | None:
        """True: met as specified; False: a limit missed; None: not measured, not judged (the
        machine is too small) or met only on a smaller run than the goal's protocol."""
        if self.reading is None or self.too_small:
            return None
        if self.failed:
            return False
        return None if self.reading.scope else True

    @property
    def verdict(self) -> str:
        if self.reading is None:
            return "not measured"
        if self.too_small:
            return f"not judged: {self.machine_cores} cores (needs ≥ {self.goal.min_cores})"
        if self.failed:
            return "**missed**"
        if self.reading.scope:
            return f"met on {self.reading.scope} only"
        return "met"

    def shortfalls(self) -> list[str]:
        """Each missed limit in words: 'mean recall 0.9853 (goal ≥ 0.99)'."""
        if self.reading is None:
            return []
        return [lim.shortfall(self.reading.values[lim.key]) for lim in self.failed]


def check(goal: Goal, results: Results) -> Check:
    result = results.get(goal.suite) if goal.suite else None
    if not result or goal.read is None:
        return Check(goal, None)
    return Check(goal, goal.read(result), cores(result))


def evaluate(results: Results) -> list[Check]:
    return [check(goal, results) for goal in GOALS]


def check_of(goal_id: str, results: Results) -> Check:
    return check(BY_ID[goal_id], results)
