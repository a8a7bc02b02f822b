"""A3 over many draws (A3m): EP-12 photos and phone selfies through the HTTP API, seeds 1..N.

One EP-12 draw of 30 photos holds ~95 attendee pairs, so a single false positive or miss moves
its precision or recall by ~0.01: like A1 (bench/calibration.py), A3 is judged over many seeded
draws. Each draw (BENCHMARKS.md's Event-Photo protocol with the draw's seed) is indexed into its
own session on the bench's `all` server and every attendee's 12 MP phone selfie is searched
once at the sweep's floor; the draws are aggregated per threshold (mean and worst draw,
`calibration_rule.aggregate`) and the same rule as A1's names the threshold these photos would
pick. The sweep stops at the strict threshold of the shipped query expansion
(`bench.harness.sweep_top`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.accuracy import http_scores, similarities
from bench.calibration_rule import aggregate
from bench.client import index_photos, unique
from bench.harness import ALL_SERVER_ENV, Bench, Server, sweep_top
from bench.protocols import lfw_events
from bench.protocols.event_photos import EpParams, build
from bench.protocols.lfw_events import Scores


def run(
    bench: Bench,
    server: Server,
    *,
    dataset: Path,
    params: EpParams,
    draws: int,
    limit: int | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """`draws` EP draws (seeds 1..draws, `params`' sizes, the first `limit` photos of each)."""
    scores: dict[int, Scores] = {}
    per_draw: list[dict[str, Any]] = []
    shipped: float | None = None
    for seed in range(1, draws + 1):
        label = f"A3 draw {seed}/{draws}"
        progress(f"{label}: building the photos and selfies")
        ep = build(dataset, replace(params, seed=seed), limit=limit)
        session_id = unique(f"a3d{seed}")
        named = [(f"{session_id}-{i:04d}", data) for i, data in enumerate(ep.photos)]
        progress(f"{label}: indexing {len(named)} photos")
        indexed = asyncio.run(index_photos(bench, server, session_id, named))
        identities = sorted(ep.selfies)
        progress(f"{label}: searching {len(identities)} phone selfies")
        similarity, no_face, default = similarities(
            server, session_id, [ep.selfies[n] for n in identities], [n for n, _ in named]
        )
        if shipped is not None and default != shipped:
            raise RuntimeError(f"the server's default moved: {shipped} -> {default}")
        shipped = default
        scores[seed] = http_scores(identities, similarity, no_face, ep.truth, indexed)
        per_draw.append(
            {
                "seed": seed,
                "photos": len(named),
                "failed": len(indexed.failed),
                "selfies": len(identities),
                "selfies_without_face": scores[seed].selfies_without_face,
                "pairs": int(scores[seed].relevant.sum()),
                "at_shipped": lfw_events.metrics_at(scores[seed], default),
            }
        )
    assert shipped is not None, "no draws"
    top = sweep_top(ALL_SERVER_ENV)
    return {
        "protocol": f"{params.name}, many draws",
        "parameters": {**{k: v for k, v in params.as_dict().items() if k != "seed"}},
        "photos_per_draw": limit,
        "seeds": list(scores),
        "strict_threshold": top,
        "photos": sum(d["photos"] for d in per_draw),
        "pairs": sum(d["pairs"] for d in per_draw),
        **aggregate(scores, shipped, top),
        "per_draw": per_draw,
    }
