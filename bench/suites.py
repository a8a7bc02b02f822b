"""The suites as one sequence: what `python -m bench all` runs, in order, on one bench.

Order matters on a 2-core machine: the suites run one after another, never together. A1, its
calibration over many draws (A1m, right after A1, one session per draw; its search-side
variants each on a `search-api` server of their own beside it), the multi-selfie comparison
(its own two-selfie draws, its fusion arms on `search-api` servers likewise), P1 and P2 share
one `all` server (started once, SEARCH_MIN_THRESHOLD lowered to the sweep's floor; P1's raw engine
runs while that server is idle). P4 needs the embedder consumer group to itself, so the `all`
server (which has an embedder) is stopped first. P5 reuses A1's figures of this run for our
side, and EP's when the ep suite ran (the peer then runs on the same EP draw too, ~10 min).
A2 (crowd) needs no server. P3 and P3m come last (each loads 1M rows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import (
    accuracy,
    calibration,
    crowd,
    data,
    ep_draws,
    event_photos,
    load,
    marathon,
    multi_selfie,
    notify,
    peer,
    pipeline,
    renditions,
    report,
    vectors,
)
from bench.harness import ALL_SERVER_ENV, Bench
from bench.protocols.event_photos import EpParams

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    """How much each suite does. The defaults are the full run's (≲ 75 min on 2 cores;
    the calibration suite alone takes ~20 min with its variants, multi-selfie ~7 min, the
    peer ~12 min: ~10 of them on the EP draw, ~6 CPU-s per 12 MP photo)."""

    events: data.EventsParams = field(default_factory=data.EventsParams)
    draws: int = calibration.DRAWS  # the calibration suite's draws (seeds 1..draws)
    variants: tuple[str, ...] = tuple(calibration.VARIANTS)  # and the variants it compares
    multi_selfie_draws: int = multi_selfie.DRAWS  # two-selfie draws (seeds 1..N), ~40 s each
    ep: EpParams = field(default_factory=EpParams)
    ep_photos: int | None = None  # None: the whole draw
    ep_draws: int = calibration.DRAWS  # A3m: seeded EP draws (0: none) of `ep_draw_photos` each
    ep_draw_photos: int = 30
    pipeline_photos: int = 96
    scale_photos: int = 96
    load_photos: int = 48
    load_selfies: int = 4500  # split over the concurrency levels, all distinct
    phone_selfies: int = 60  # P2's 12 MP phone selfies (rotated by wrk; that server caches nothing)
    concurrency: tuple[int, ...] = (10, 50, 200)
    uncached_s: int = 20
    cached_s: int = 10
    rate_limit_check: bool = True
    peer_timeout_s: float = 1200  # each of its two runs (LFW-Events, EP)
    rendition_photos: int = 6  # per camera size, after a warm-up
    marathon_plan: marathon.Plan = field(default_factory=marathon.Plan)  # ~3 min
    vector_plan: vectors.Plan = field(
        default_factory=lambda: vectors.Plan(
            sessions=1000, faces_per_session=900, big_session_faces=100_000, queries=100
        )
    )


@dataclass
class Outcome:
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _bench_info(bench: Bench, sizes: Sizes) -> dict[str, Any]:
    return {"stack": bench.mode, "partitions": bench.settings.kafka.partitions}


def run_all(
    bench: Bench,
    sizes: Sizes,
    *,
    dataset: Path,
    group: Path | None,
    suites: set[str],
    save: bool,
    progress: Progress,
    folder: Path = report.BENCH_DIR,
) -> Outcome:
    """Run the chosen suites (accuracy, calibration, multi-selfie, ep, pipeline, load, scale,
    peer, crowd, renditions, notify, vectors, marathon) in order."""
    outcome = Outcome()
    have_lfw = data.lfw_available(dataset)

    def done(suite: str, result: dict[str, Any]) -> None:
        result = {**result, "bench": _bench_info(bench, sizes)}
        outcome.results[suite] = result
        if save:
            progress(f"saved {report.save(suite, result, folder)}")

    if "peer" in suites and "accuracy" not in suites:
        suites = {*suites, "accuracy"}  # P5 compares with A1 of the same run
    if suites & {"accuracy", "calibration", "multi-selfie", "ep", "pipeline", "load"}:
        with bench.serve("all", **ALL_SERVER_ENV) as server:
            if "accuracy" in suites:
                if have_lfw:
                    done(
                        "accuracy",
                        accuracy.run(
                            bench,
                            server,
                            dataset=dataset,
                            params=sizes.events,
                            group=group,
                            progress=progress,
                        ),
                    )
                else:
                    outcome.skipped["accuracy"] = f"no dataset at {dataset}"
            if "calibration" in suites:
                if have_lfw:
                    result = calibration.run(
                        bench, server, dataset=dataset, params=sizes.events, draws=sizes.draws,
                        variants=sizes.variants, progress=progress,
                    )  # fmt: skip
                    done("calibration", result)
                else:
                    outcome.skipped["calibration"] = f"no dataset at {dataset}"
            if "multi-selfie" in suites:
                if have_lfw:
                    result = multi_selfie.run(
                        bench, server, dataset=dataset, params=sizes.events,
                        draws=sizes.multi_selfie_draws, progress=progress,
                    )  # fmt: skip
                    done("multi-selfie", result)
                else:
                    outcome.skipped["multi-selfie"] = f"no dataset at {dataset}"
            if "ep" in suites:
                if have_lfw:
                    result = event_photos.run(
                        bench, server, dataset=dataset, params=sizes.ep, limit=sizes.ep_photos,
                        progress=progress,
                    )  # fmt: skip
                    if sizes.ep_draws:
                        result["a3_draws"] = ep_draws.run(
                            bench, server, dataset=dataset, params=sizes.ep,
                            draws=sizes.ep_draws, limit=sizes.ep_draw_photos, progress=progress,
                        )  # fmt: skip
                    done("ep", result)
                else:
                    outcome.skipped["ep"] = f"no dataset at {dataset}"
            if "pipeline" in suites:
                photos = data.event_photos(dataset, sizes.pipeline_photos, sizes.events)
                done("pipeline", pipeline.efficiency(bench, server, photos, progress))
            if "load" in suites:
                done("load", _load(bench, server, sizes, dataset, progress))
    if "scale" in suites:
        photos = data.event_photos(dataset, sizes.scale_photos, sizes.events)
        done("scale", pipeline.scale_out(bench, photos, progress))
    if "peer" in suites:
        _peer(outcome, sizes, dataset, done, progress)
    if "crowd" in suites:
        if have_lfw:
            done("crowd", crowd.run(dataset, progress=progress))
        else:
            outcome.skipped["crowd"] = f"no dataset at {dataset}"
    if "renditions" in suites:
        progress("renditions: CPU per camera-size photo")
        done("renditions", renditions.run(sizes.rendition_photos))
    if "notify" in suites:
        progress("N1: notify me")
        done("notify", notify.run(bench, progress))
    if "vectors" in suites:
        progress("P3: vectors")
        done("vectors", asyncio.run(vectors.run(bench.settings, sizes.vector_plan, progress)))
    if "marathon" in suites:
        progress("P3m: one 1M-face session while indexing")
        plan = sizes.marathon_plan
        done("marathon", asyncio.run(marathon.run(bench.settings, plan, progress)))
    return outcome


def _load(
    bench: Bench, server: Any, sizes: Sizes, dataset: Path, progress: Progress
) -> dict[str, Any]:
    return load.run(
        bench,
        server,
        photos=data.event_photos(dataset, sizes.load_photos, sizes.events),
        selfies=data.distinct_selfies(dataset, sizes.load_selfies),
        concurrency=sizes.concurrency,
        uncached_s=sizes.uncached_s,
        cached_s=sizes.cached_s,
        rate_limit_check=sizes.rate_limit_check,
        progress=progress,
        phone_selfies=(
            data.phone_selfies(dataset, sizes.phone_selfies)
            if data.lfw_available(dataset)
            else None
        ),
    )


def _peer(
    outcome: Outcome,
    sizes: Sizes,
    dataset: Path,
    done: Callable[[str, dict[str, Any]], None],
    progress: Progress,
) -> None:
    """P5 on LFW-Events beside A1 of this run, and on the EP draw too when the `ep` suite ran
    in this run (`all`); `python -m bench peer` alone does not run `ep` (its P6 rounds and A3m
    draws take long and would replace the saved EP result), so P5 is then LFW-Events only."""
    ours = outcome.results.get("accuracy", {}).get("lfw_events")
    if ours is None:
        outcome.skipped["peer"] = "needs A1 (LFW-Events) of the same run"
        return
    try:
        python = peer.ensure_venv(progress=progress)
    except peer.PeerUnavailableError as exc:
        outcome.skipped["peer"] = f"face_recognition/dlib could not be installed: {exc}"
        return
    timeout_s = sizes.peer_timeout_s
    result = peer.run(
        dataset, sizes.events, ours, python=python, timeout_s=timeout_s, progress=progress
    )
    if "ep" in outcome.results:
        result["ep"] = peer.run_ep(
            dataset, sizes.ep, sizes.ep_photos, outcome.results["ep"], python=python,
            timeout_s=timeout_s, progress=progress,
        )  # fmt: skip
    done("peer", result)
