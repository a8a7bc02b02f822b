"""Several selfies: do two selfies of one person find more of their LFW-Events photos at the
shipped threshold, without the worst draw's precision falling below 0.995, and which of the two
fusions of SEARCH_SELFIES_FUSION (services/search_api/selfies.py) does it better?

Protocol (our own variant of BENCHMARKS.md's LFW-Events, "Many draws"):

1. Draws as the calibration suite makes them (bench/calibration.py): seeds 1..N on the dev half
   with the reference sizes (150 attendees, cap 8, 300 distractors), attendees and distractors
   in BENCHMARKS.md's seeded shuffle order, each draw indexed into its own session on the
   bench's `all` server. One difference: every attendee has TWO selfies, its first and second
   images (sorted file names), and its appearances are its images from the third on, still up
   to `cap` images in all (so at most 6 appearances, not 7; `lfw_events.draw(selfies=2)`).
   Attendees need >= 3 images, which LFW-Events attendees already have, so the attendee pool
   and the drawn attendees are the calibration draw's (an identity with exactly 2 images would
   keep no appearance; the pool, `lfw_events.attendee_pool(labels, 2)`, leaves such out for
   every arm alike). The appearances and distractor images are shuffled by the same generator
   and tiled into the protocol's 2x2 collages, as in LFW-Events; the collages differ from the
   calibration's (image 2 is not an appearance here).
2. Arms, all on the very same collages in the very same session of each draw, so their
   difference is the query alone:
   - `1 selfie`: the first image, on the `all` server (fusion does not apply to one selfie);
   - `2 selfies, mean` and `2 selfies, max`: the first and second images in one request
     (two `file` parts), each on a `search-api` server of its own over the same stack and
     sessions with SEARCH_SELFIES_FUSION named explicitly (`mean` is also what ships), the rest
     of its settings the `all` server's (ALL_SERVER_ENV; query expansion on, as shipped).
   Every search asks for no threshold (the server's default, the shipped one; the suite
   checks that every answer says the same) and a limit above the session's photos. A request
   whose second selfie has no face fails whole (422 no-face), as the API does: that attendee
   then finds nothing in that arm, and the count is reported.
3. Scores: the library protocol's (`lfw_events.metrics_at`): micro precision, recall and F1
   over every (attendee, photo) pair of a draw at the shipped threshold; across the draws the
   mean and the worst draw (`calibration_rule.across`). As labelled (BENCHMARKS.md's truth)
   and on the verified truth (bench/protocols/coappearances.py, what the calibration's rule
   judges on). Per draw, paired with the 1-selfie arm: the true photos an arm gains and loses
   and the false positives it adds and removes (`paired`).
4. The target: an arm meets it when its mean recall is above the 1-selfie arm's and its
   worst-draw precision is >= 0.995 (`verdict`); the better fusion is the one that meets the
   floor (or, if neither does, the one with the higher worst-draw precision), then the higher
   mean F1 (`better`).

The split of a draw into each arm's selfies (`queries`), the paired comparison, the verdict and
the choice are pure, unit-tested in tests/bench/test_multi_selfie.py.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import calibration, data
from bench.accuracy import SearchStats, http_draw, http_scores, similarities
from bench.calibration_rule import PRECISION_FLOOR, RULE_TRUTH, across
from bench.client import Selfie
from bench.harness import ALL_SERVER_ENV, Bench, Server, sweep_top
from bench.protocols import coappearances, lfw_events
from bench.protocols.lfw_events import Protocol, Scores

#: The draws of a full run (seeds 1..N): ~35-40 s each on 2 cores, ~7 min in all.
DRAWS = 10
#: Every attendee's selfies in this suite's draws (its first images); arms use a prefix.
SELFIES = 2
TRUTHS = ("as_labelled", "verified")


@dataclass(frozen=True)
class Arm:
    """How an arm searches: with an attendee's first `selfies` images, on the `all` server
    (`env` None) or on a `search-api` server with `env` over ALL_SERVER_ENV."""

    selfies: int
    env: dict[str, str] | None = None


BASE = "1 selfie"
ARMS: dict[str, Arm] = {
    BASE: Arm(1),
    "2 selfies, mean": Arm(2, {"SEARCH_SELFIES_FUSION": "mean"}),
    "2 selfies, max": Arm(2, {"SEARCH_SELFIES_FUSION": "max"}),
}


def queries(protocol: Protocol, selfies: int) -> tuple[list[str], list[tuple[Path, ...]]]:
    """The attendees (sorted, as every LFW-Events score orders them) and the selfie files each
    searches with: its first `selfies` (of the protocol's `selfie_sets`)."""
    if selfies < 1:
        raise ValueError(f"selfies must be >= 1, not {selfies}")
    identities = sorted(protocol.selfie_sets)
    short = [name for name in identities if len(protocol.selfie_sets[name]) < selfies]
    if short:
        raise ValueError(f"{len(short)} attendees have fewer than {selfies} selfies: {short[:5]}")
    return identities, [protocol.selfie_sets[name][:selfies] for name in identities]


def paired(base: Scores, other: Scores, threshold: float) -> dict[str, int]:
    """`other` beside `base` at `threshold`, on the same selfies, photos and truth: the true
    pairs it gains (returns, `base` misses) and loses, the false positives it adds and
    removes."""
    if base.identities != other.identities or base.similarity.shape != other.similarity.shape:
        raise ValueError("the arms were not scored on the same draw")
    if not np.array_equal(base.relevant, other.relevant):
        raise ValueError("the arms were scored on different truths")
    b, o = base.similarity >= threshold, other.similarity >= threshold
    true, false = base.relevant, ~base.relevant
    return {
        "gained": int(np.sum(o & ~b & true)),
        "lost": int(np.sum(b & ~o & true)),
        "fp_added": int(np.sum(o & ~b & false)),
        "fp_removed": int(np.sum(b & ~o & false)),
    }


def summed(rows: list[dict[str, int]]) -> dict[str, int]:
    """`paired` rows added up (over the draws)."""
    keys = ("gained", "lost", "fp_added", "fp_removed")
    return {key: sum(row[key] for row in rows) for key in keys}


def verdict(
    rows: Mapping[str, Mapping[str, Any]], base: str = BASE, floor: float = PRECISION_FLOOR
) -> dict[str, dict[str, Any]]:
    """Per arm but `base` (each an `across` row at the shipped threshold): its mean recall's
    gain over `base`'s, its worst-draw precision and whether the target holds (a gain, and
    the worst draw's precision >= `floor`)."""
    out: dict[str, dict[str, Any]] = {}
    for name, row in rows.items():
        if name == base:
            continue
        gain = row["mean_recall"] - rows[base]["mean_recall"]
        holds = row["worst_precision"] >= floor
        out[name] = {
            "recall_gain": gain,
            "precision_change": row["mean_precision"] - rows[base]["mean_precision"],
            "worst_precision": row["worst_precision"],
            "precision_holds": holds,
            "met": gain > 0 and holds,
        }
    return out


def better(
    rows: Mapping[str, Mapping[str, Any]], base: str = BASE, floor: float = PRECISION_FLOOR
) -> str | None:
    """The better of the arms but `base`: one whose worst draw keeps `floor` over one that
    does not (if neither does, the higher worst-draw precision), then the higher mean F1;
    None without arms."""
    others = [name for name in rows if name != base]
    if not others:
        return None

    def key(name: str) -> tuple[bool, float, float]:
        row = rows[name]
        holds = row["worst_precision"] >= floor
        return holds, 0.0 if holds else row["worst_precision"], row["mean_f1"]

    return max(others, key=key)


def _at(scores: Scores, threshold: float) -> dict[str, Any]:
    m = lfw_events.metrics_at(scores, threshold)
    return {k: m[k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")}


def _bytes(files: list[tuple[Path, ...]]) -> list[Selfie]:
    """What a search sends per attendee: one selfie's bytes, or several as one request."""
    return [
        paths[0].read_bytes() if len(paths) == 1 else tuple(p.read_bytes() for p in paths)
        for paths in files
    ]


def _servers(bench: Bench, server: Server) -> tuple[dict[str, Server], list[Server]]:
    """Each arm's server: the `all` one, or a `search-api` one of its own (started together)."""
    variants = [name for name, arm in ARMS.items() if arm.env is not None]
    started = bench.start_many(
        *(("search-api", {**ALL_SERVER_ENV, **(ARMS[name].env or {})}) for name in variants)
    )
    by_arm = {name: server for name, arm in ARMS.items() if arm.env is None}
    return {**by_arm, **dict(zip(variants, started, strict=True))}, started


def run(
    bench: Bench,
    server: Server,
    *,
    dataset: Path,
    params: data.EventsParams,
    draws: int = DRAWS,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """The arms of `ARMS` over `draws` two-selfie draws (seeds 1..draws, `params`' sizes), each
    draw indexed once on the bench's `all` server and searched by every arm in its session."""
    start = time.perf_counter()
    labels = lfw_events.read_labels(dataset)
    also_shows = coappearances.read()
    coappearances.check(also_shows, labels, dataset)
    scores: dict[str, dict[str, dict[int, Scores]]] = {
        name: {truth: {} for truth in TRUTHS} for name in ARMS
    }
    stats = {name: SearchStats() for name in ARMS}
    per_draw: list[dict[str, Any]] = []
    shipped: float | None = None
    pack = "unknown"
    progress(f"multi-selfie: starting the arms' search-api servers ({', '.join(ARMS)})")
    servers, started = _servers(bench, server)
    try:
        for seed in range(1, draws + 1):
            drawn_params = replace(params, seed=seed)
            label = f"multi-selfie {seed}/{draws}"
            protocol = data.events(dataset, drawn_params, selfies=SELFIES)
            drawn = http_draw(
                bench, server, protocol, f"ms{seed}", progress, label, stats[BASE], threshold=None
            )
            if shipped is not None and drawn.default != shipped:
                raise RuntimeError(f"the server's default moved: {shipped} -> {drawn.default}")
            shipped, pack = drawn.default, drawn.pack
            who = calibration.drawn_identities(labels, drawn_params, dataset, selfies=SELFIES)
            if [frozenset(t) & set(who.attendees) for t in who.tiles] != protocol.truth:
                raise RuntimeError(f"draw {seed}: the identities do not match the protocol")
            truth = coappearances.verified_truth(protocol.truth, who.images, also_shows)
            entry: dict[str, Any] = {
                "seed": seed,
                "photos": len(protocol.collages),
                "indexed": len(drawn.run.indexed),
                "failed": len(drawn.run.failed),
                "selfies": len(protocol.selfies),
                "pairs": int(drawn.scores.relevant.sum()),
                "index_wall_s": round(drawn.run.wall_s, 2),
                "arms": {},
                "paired": {},
            }
            for name, arm in ARMS.items():
                if arm.selfies == 1 and arm.env is None:
                    labelled = drawn.scores  # http_draw searched the first images here
                else:
                    progress(f"{label}: searching {len(protocol.selfies)} attendees, {name}")
                    identities, files = queries(protocol, arm.selfies)
                    similarity, no_face, default = similarities(
                        servers[name], drawn.session_id, _bytes(files), drawn.photo_ids,
                        stats[name], threshold=None,
                    )  # fmt: skip
                    if default != shipped:
                        raise RuntimeError(f"{name}: the default is {default}, not {shipped}")
                    labelled = http_scores(identities, similarity, no_face, protocol.truth,
                                           drawn.run)  # fmt: skip
                verified = coappearances.with_truth(labelled, truth)
                scores[name]["as_labelled"][seed] = labelled
                scores[name]["verified"][seed] = verified
                entry["arms"][name] = {
                    "selfies_without_face": labelled.selfies_without_face,
                    "as_labelled": _at(labelled, shipped),
                    "verified": _at(verified, shipped),
                    # those that remain on the verified truth, as the calibration keeps them
                    "false_positives": calibration.false_positives(
                        verified, shipped, who.tiles, who.images
                    ),
                }
            entry["pairs_verified"] = int(scores[BASE]["verified"][seed].relevant.sum())
            for name in ARMS:
                if name != BASE:
                    entry["paired"][name] = {
                        truth_name: paired(
                            scores[BASE][truth_name][seed], scores[name][truth_name][seed], shipped
                        )
                        for truth_name in TRUTHS
                    }
            per_draw.append(entry)
    finally:
        for variant in started:
            variant.stop()
    assert shipped is not None, "no draws"
    at_shipped = {
        truth: {name: across(scores[name][truth], shipped) for name in ARMS} for truth in TRUTHS
    }
    return {
        "protocol": "LFW-Events, two selfies per attendee (multi-selfie)",
        "parameters": {
            **{k: v for k, v in params.as_dict().items() if k != "seed"},
            "seeds": [d["seed"] for d in per_draw],
            "selfies": SELFIES,
        },
        "pack": pack,
        "draws": len(per_draw),
        "shipped_threshold": shipped,
        "strict_threshold": sweep_top(ALL_SERVER_ENV),
        "precision_floor": PRECISION_FLOOR,
        "truth": RULE_TRUTH,
        "arms": {
            name: {
                "selfies": arm.selfies,
                "server": "all" if arm.env is None else "search-api",
                "env": arm.env or {},
                **{truth: at_shipped[truth][name] for truth in TRUTHS},
                "selfies_without_face": sum(
                    len(d["arms"][name]["selfies_without_face"]) for d in per_draw
                ),
                "search": stats[name].summary(),
            }
            for name, arm in ARMS.items()
        },
        "paired": {
            name: {truth: summed([d["paired"][name][truth] for d in per_draw]) for truth in TRUTHS}
            for name in ARMS
            if name != BASE
        },
        "verdict": {truth: verdict(at_shipped[truth]) for truth in TRUTHS},
        "better": {truth: better(at_shipped[truth]) for truth in TRUTHS},
        "photos": sum(d["photos"] for d in per_draw),
        "pairs": sum(d["pairs"] for d in per_draw),
        "pairs_verified": sum(d["pairs_verified"] for d in per_draw),
        "index_wall_s": round(statistics.fmean(d["index_wall_s"] for d in per_draw), 2),
        "wall_s": round(time.perf_counter() - start, 1),
        "per_draw": per_draw,
    }
