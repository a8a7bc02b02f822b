"""A1 over many draws, and the rule that picks the pack's default threshold (BENCHMARKS.md,
"Many draws"), on two truths; and search-side variants compared on the same draws.

One LFW-Events draw of 150 attendees has ~600 positive pairs, so its precision moves by 0.0017
per false positive: a threshold tuned on one draw is noisy. This suite runs LFW-Events through
the HTTP API over many seeded draws (seeds 1..N, BENCHMARKS.md's draw function, the reference
sizes), each indexed into its own session on the same `all` server and each selfie searched
once at the sweep's floor (as the accuracy suite does, `accuracy.http_draw`). Per threshold of
the sweep it reports the mean and the worst draw of precision and recall, then picks the
default with `RULE` (`pick`), and says how much of the dev half the draws covered.

Two truths. Every draw is scored "as labelled" (BENCHMARKS.md's protocol: a collage shows the
attendees its tiles are labelled with) and "verified": a collage also shows X when one of its
tile images is listed in bench/protocols/lfw_dev_coappearances.csv as also showing X (a second
person in the LFW image, checked by eye; `coappearances.verified_truth`). The rule picks on
the verified truth; both sweeps are reported, with how many false positives the corrections
removed. A1m (goals.py) reads the as-labelled figures.

Variants. After every draw is indexed and searched, each variant of `VARIANTS` gets a
`search-api` server of its own over the same stack (the base server's settings plus the
variant's) that searches every draw's selfies again in the draw's existing session; the scores
are aggregated like the base's. With query expansion the answer is the union of a first pass
at the request's threshold and a second pass with a query refined by the first pass's matches
at the strict threshold (SEARCH_EXPANSION_THRESHOLD; services/search_api/expansion.py). For a
request threshold t <= the strict threshold the lenders are the same whatever t is, so
filtering one search made at the sweep's floor at t client-side gives exactly the answer of a
search at t; above the strict threshold it would not (a search there lends at its own
threshold), so a sweep with expansion (the base's, as it ships, and an expansion variant's)
stops at its strict threshold (`bench.harness.sweep_top`) and its rule looks only up to there.

Where no threshold satisfies the rule, `holding` says where the worst draw's precision does
reach the floor, and each draw's false positives at the shipped threshold name the identities
and images of the photo's tiles (unlabelled true matches show there). The aggregation
and the rule (bench/calibration_rule.py), `false_positives` and `sweep_top` are pure, so
they are unit-tested on synthetic scores (tests/bench/test_calibration.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import data, goals
from bench.accuracy import HttpDraw, SearchStats, http_draw, http_scores, similarities
from bench.calibration_rule import (
    PRECISION_FLOOR,
    RULE,
    RULE_TRUTH,
    aggregate,
    corrections,
    coverage,
)
from bench.harness import ALL_SERVER_ENV, Bench, Server, sweep_top
from bench.protocols import coappearances, lfw_events
from bench.protocols.lfw_events import Scores

#: The draws of a full run (A1 asks for >= 20).
DRAWS = goals.A1_DRAWS
#: Search-side variants compared on the same draws: what each changes in the base server's
#: settings (ALL_SERVER_ENV over the shipped defaults: query expansion at 0.6, no flip) on its
#: own `search-api` server. Each names its switches in full, whatever ships.
_NO_FLIP = {"FACE_SELFIE_FLIP": "false"}
_NO_EXPANSION = {"SEARCH_QUERY_EXPANSION": "false"}


def _expansion(strict: str) -> dict[str, str]:
    return {"SEARCH_QUERY_EXPANSION": "true", "SEARCH_EXPANSION_THRESHOLD": strict}


VARIANTS: dict[str, dict[str, str]] = {
    "neither": {**_NO_FLIP, **_NO_EXPANSION},
    "flip": {"FACE_SELFIE_FLIP": "true", **_NO_EXPANSION},
    "expansion 0.5": {**_NO_FLIP, **_expansion("0.5")},
    "expansion 0.6": {**_NO_FLIP, **_expansion("0.6")},
    "expansion 0.7": {**_NO_FLIP, **_expansion("0.7")},
    "flip + expansion 0.6": {"FACE_SELFIE_FLIP": "true", **_expansion("0.6")},
}


@dataclass(frozen=True)
class Drawn:
    """Who a draw used: its attendees, its distractor identities and, per collage, the
    identity and the image of every tile (the protocol keeps only the attendees of each
    collage)."""

    attendees: list[str]
    distractors: list[str]
    tiles: list[list[str]]
    images: list[list[str]]  # per collage, each tile's path (relative to `root`, POSIX)


def drawn_identities(
    labels: dict[str, list[Path]],
    params: data.EventsParams,
    root: Path | None = None,
    selfies: int = 1,
) -> Drawn:
    """The draw `params` makes (`lfw_events.draw`, the protocol's own, with `selfies` selfies
    per attendee), by identity and image; image paths are relative to `root` (the dataset
    directory) when given."""
    rng = random.Random(params.seed)  # noqa: S311 - a reproducible draw, not a secret
    attendees, images = lfw_events.draw(
        labels, rng, max_ids=params.max_ids, cap=params.cap, n_distractors=params.n_distractors,
        selfies=selfies,
    )  # fmt: skip
    owner = {path: name for name, paths in labels.items() for path in paths}
    named = [name or owner[path] for path, name in images]
    distractors = [owner[path] for path, name in images if name is None]
    paths = [(path.relative_to(root) if root else path).as_posix() for path, _ in images]
    return Drawn(
        attendees,
        distractors,
        [list(t) for t in lfw_events.in_collages(named)],
        [list(t) for t in lfw_events.in_collages(paths)],
    )


def false_positives(
    scores: Scores,
    threshold: float,
    tiles: Sequence[Sequence[str]],
    images: Sequence[Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """The (selfie, photo) pairs returned at `threshold` that the ground truth calls wrong,
    most similar first, with the identities (and, given `images`, the images) of the photo's
    tiles."""
    rows, columns = np.nonzero((scores.similarity >= threshold) & ~scores.relevant)
    found = [
        {
            "selfie": scores.identities[row],
            "photo": column,
            "similarity": round(float(scores.similarity[row, column]), 4),
            "tiles": list(tiles[column]),
            **({"images": list(images[column])} if images is not None else {}),
        }
        for row, column in zip(rows.tolist(), columns.tolist(), strict=True)
    ]
    return sorted(found, key=lambda fp: (-fp["similarity"], fp["selfie"], fp["photo"]))


def _at(scores: Scores, threshold: float | None) -> dict[str, Any] | None:
    if threshold is None:
        return None
    m = lfw_events.metrics_at(scores, threshold)
    return {k: m[k] for k in ("threshold", "precision", "recall", "tp", "fp", "fn")}


@dataclass(frozen=True)
class _Kept:
    """One draw of the base run, kept for the variants: its session, selfies and truths."""

    drawn: HttpDraw
    labelled: list[frozenset[str]]
    verified: list[frozenset[str]]


def _variant(
    bench: Bench,
    name: str,
    kept: Mapping[int, _Kept],
    shipped: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Every draw's selfies searched again, in the draw's session, on a `search-api` server
    with the variant's settings; aggregated like the base (on both truths)."""
    env = VARIANTS[name]
    top = sweep_top({**ALL_SERVER_ENV, **env})
    at = shipped if top is None or shipped <= top + 1e-9 else None  # within the valid sweep
    start = time.perf_counter()
    stats = SearchStats()
    labelled: dict[int, Scores] = {}
    verified: dict[int, Scores] = {}
    per_draw: list[dict[str, Any]] = []
    progress(f"calibration {name}: starting a search-api server with {env}")
    with bench.serve("search-api", **{**ALL_SERVER_ENV, **env}) as server:
        for seed, k in kept.items():
            progress(f"calibration {name}: draw {seed}, searching {len(k.drawn.selfies)} selfies")
            similarity, no_face, default = similarities(
                server, k.drawn.session_id, k.drawn.selfies, k.drawn.photo_ids, stats
            )
            if default != shipped:
                raise RuntimeError(f"{name}: the server's default is {default}, not {shipped}")
            identities = k.drawn.scores.identities
            labelled[seed] = http_scores(identities, similarity, no_face, k.labelled, k.drawn.run)
            verified[seed] = coappearances.with_truth(labelled[seed], k.verified)
            per_draw.append(
                {
                    "seed": seed,
                    "selfies_without_face": labelled[seed].selfies_without_face,
                    "at_shipped": _at(labelled[seed], at),
                    "at_shipped_verified": _at(verified[seed], at),
                }
            )
    return {
        "env": env,
        "strict_threshold": top,
        "verified": aggregate(verified, shipped, top),
        "as_labelled": aggregate(labelled, shipped, top),
        "search": stats.summary(),
        "wall_s": round(time.perf_counter() - start, 1),
        "per_draw": per_draw,
    }


def run(
    bench: Bench,
    server: Server,
    *,
    dataset: Path,
    params: data.EventsParams,
    draws: int = DRAWS,
    variants: Sequence[str] = tuple(VARIANTS),
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """LFW-Events over `draws` draws (seeds 1..draws, `params`' sizes) on the bench's `all`
    server (SEARCH_MIN_THRESHOLD lowered to the sweep's floor), on both truths; then each of
    `variants` (names of `VARIANTS`) on the same draws."""
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants: {unknown}; known: {list(VARIANTS)}")
    start = time.perf_counter()
    labels = lfw_events.read_labels(dataset)
    also_shows = coappearances.read()
    coappearances.check(also_shows, labels, dataset)
    labelled: dict[int, Scores] = {}
    verified: dict[int, Scores] = {}
    kept: dict[int, _Kept] = {}
    per_draw: list[dict[str, Any]] = []
    used: list[Drawn] = []
    stats = SearchStats()
    shipped: float | None = None
    pack = "unknown"
    for seed in range(1, draws + 1):
        drawn_params = replace(params, seed=seed)
        label = f"calibration {seed}/{draws}"
        protocol = data.events(dataset, drawn_params)
        drawn = http_draw(bench, server, protocol, f"cal{seed}", progress, label, stats)
        if shipped is not None and drawn.default != shipped:
            raise RuntimeError(f"the server's default moved: {shipped} -> {drawn.default}")
        shipped, pack = drawn.default, drawn.pack
        who = drawn_identities(labels, drawn_params, root=dataset)
        attendees = set(who.attendees)
        if [frozenset(t) & attendees for t in who.tiles] != protocol.truth:
            raise RuntimeError(f"draw {seed}: the identities do not match the protocol")
        truth = coappearances.verified_truth(protocol.truth, who.images, also_shows)
        labelled[seed] = drawn.scores
        verified[seed] = coappearances.with_truth(drawn.scores, truth)
        kept[seed] = _Kept(drawn, list(protocol.truth), truth)
        used.append(who)
        fps = false_positives(drawn.scores, drawn.default, who.tiles, who.images)
        remaining = false_positives(verified[seed], drawn.default, who.tiles, who.images)
        per_draw.append(
            {
                "seed": seed,
                "photos": int(drawn.scores.similarity.shape[1]),
                "indexed": len(drawn.run.indexed),
                "failed": len(drawn.run.failed),
                "faces_indexed": drawn.scores.photos_faces,
                "selfies": len(drawn.scores.identities),
                "selfies_without_face": drawn.scores.selfies_without_face,
                "pairs": int(drawn.scores.relevant.sum()),
                "pairs_verified": int(verified[seed].relevant.sum()),
                "index_wall_s": round(drawn.run.wall_s, 2),
                "at_shipped": _at(drawn.scores, drawn.default),
                "at_shipped_verified": _at(verified[seed], drawn.default),
                "false_positives": remaining,
                "corrected": [
                    {
                        **fp,
                        "shown_in": [
                            i for i in fp["images"] if fp["selfie"] in also_shows.get(i, ())
                        ],
                    }
                    for fp in fps
                    if fp not in remaining
                ],
            }
        )
    assert shipped is not None, "no draws"
    top = sweep_top(ALL_SERVER_ENV)  # the shipped settings' expansion, if any
    on_verified = aggregate(verified, shipped, top)
    on_labels = aggregate(labelled, shipped, top)
    chosen = on_verified["pick"]
    for entry in per_draw:
        entry["at_pick"] = _at(verified[entry["seed"]], chosen["threshold"] if chosen else None)
    base_wall_s = round(time.perf_counter() - start, 1)
    compared = {name: _variant(bench, name, kept, shipped, progress) for name in variants}
    return {
        "protocol": "LFW-Events, many draws",
        "parameters": {
            **{k: v for k, v in params.as_dict().items() if k != "seed"},
            "seeds": list(labelled),
        },
        "pack": pack,
        "draws": len(labelled),
        "shipped_threshold": shipped,
        "strict_threshold": top,
        "rule": RULE,
        "rule_truth": RULE_TRUTH,
        "precision_floor": PRECISION_FLOOR,
        "pick": chosen,
        "a1_at_pick": on_verified["a1_at_pick"],
        "verified": on_verified,
        "as_labelled": on_labels,
        "corrections": {
            **corrections(labelled, verified, shipped),
            "images_listed": len(also_shows),
        },
        "coverage": coverage(
            (d.attendees for d in used),
            (d.distractors for d in used),
            lfw_events.attendee_pool(labels),
            lfw_events.distractor_pool(labels),
        ),
        "photos": sum(d["photos"] for d in per_draw),
        "pairs": sum(d["pairs"] for d in per_draw),
        "pairs_verified": sum(d["pairs_verified"] for d in per_draw),
        "search": stats.summary(),
        "base_wall_s": base_wall_s,
        "variants": compared,
        "wall_s": round(time.perf_counter() - start, 1),
        "per_draw": per_draw,
    }
