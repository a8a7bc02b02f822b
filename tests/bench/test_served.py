"""A1, P1 and P2 on one `all` server (module-scoped: it is stopped before P4, whose embedders
must have the bench's consumer group to themselves)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bench import (
    accuracy,
    calibration,
    data,
    ep_draws,
    event_photos,
    load,
    multi_selfie,
    pipeline,
    report,
    wrk,
)
from bench.harness import ALL_SERVER_ENV, SWEEP_FLOOR, Bench, Server
from tests.bench.conftest import LFW, SMOKE_EP, SMOKE_EP_PHOTOS, TINY, needs_lfw


@pytest.fixture(scope="module")
def server(bench: Bench) -> Iterator[Server]:
    with bench.serve("all", **ALL_SERVER_ENV) as process:
        yield process


def _probability(value: Any) -> bool:
    return isinstance(value, float | int) and 0.0 <= value <= 1.0


@needs_lfw
def test_accuracy_through_http(
    bench: Bench, server: Server, collected: dict[str, Any], tmp_path: Any
) -> None:
    # The group photos (8 large photos) are left to the full run, to keep the smoke short.
    result = accuracy.run(bench, server, dataset=LFW, params=TINY, group=None, progress=print)
    ev = result["lfw_events"]
    protocol = data.events(LFW, TINY)
    assert ev["photos"] == len(protocol.collages)
    assert ev["selfies"] == len(protocol.selfies)
    assert ev["indexing"]["indexed"] == len(protocol.collages)
    for key in ("precision", "recall", "f1"):
        assert _probability(ev["at_threshold"][key])
    assert ev["shipped_threshold"] > SWEEP_FLOOR
    assert len(ev["sweep"]) > 10
    assert ev["server_filter_check"]["selfies_checked"] > 0
    assert "group" not in result
    saved = report.save("accuracy", result, tmp_path)
    assert saved.is_file()
    collected["accuracy"] = result


@needs_lfw
def test_calibration_over_draws(bench: Bench, server: Server, collected: dict[str, Any]) -> None:
    result = calibration.run(
        bench, server, dataset=LFW, params=TINY, draws=2, variants=["neither"],
        progress=print,
    )  # fmt: skip
    assert result["draws"] == 2
    assert [d["seed"] for d in result["per_draw"]] == [1, 2]
    for d in result["per_draw"]:
        assert d["failed"] == 0 and d["pairs"] > 0 and d["pairs_verified"] >= d["pairs"]
        assert _probability(d["at_shipped"]["precision"])
        assert _probability(d["at_shipped_verified"]["precision"])
    assert result["shipped_threshold"] > SWEEP_FLOOR
    assert len(result["verified"]["sweep"]) == len(result["as_labelled"]["sweep"]) > 10
    assert result["corrections"]["images_listed"] > 0
    # The base runs the shipped settings (query expansion at 0.6): its sweep stops there.
    assert result["strict_threshold"] == 0.6
    assert result["verified"]["sweep"][-1]["threshold"] == 0.6
    neither = result["variants"]["neither"]
    assert neither["strict_threshold"] is None
    assert neither["verified"]["sweep"][-1]["threshold"] == 0.7
    assert neither["search"]["searches"] == 2 * TINY.max_ids
    assert 0 < result["coverage"]["attendees_used"] <= 2 * TINY.max_ids
    collected["calibration"] = result


@needs_lfw
def test_multi_selfie_arms(bench: Bench, server: Server, collected: dict[str, Any]) -> None:
    result = multi_selfie.run(bench, server, dataset=LFW, params=TINY, draws=1, progress=print)
    assert result["draws"] == 1 and result["shipped_threshold"] > SWEEP_FLOOR
    protocol = data.events(LFW, TINY, selfies=2)
    (draw,) = result["per_draw"]
    assert draw["photos"] == len(protocol.collages) and draw["failed"] == 0
    assert set(result["arms"]) == set(multi_selfie.ARMS)
    for name, arm in result["arms"].items():
        assert arm["search"]["searches"] == TINY.max_ids, name
        for truth in multi_selfie.TRUTHS:
            assert _probability(arm[truth]["mean_precision"])
            assert _probability(arm[truth]["mean_recall"])
    assert result["arms"]["2 selfies, max"]["env"] == {"SEARCH_SELFIES_FUSION": "max"}
    assert set(result["verdict"]["verified"]) == set(multi_selfie.ARMS) - {multi_selfie.BASE}
    collected["multi-selfie"] = result


def test_pipeline_efficiency(bench: Bench, server: Server, collected: dict[str, Any]) -> None:
    photos = data.event_photos(LFW, 3, TINY)
    result = pipeline.efficiency(bench, server, photos, progress=print)
    assert result["end_to_end"]["indexed"] == 3
    assert result["raw_photos_per_s"] > 0
    assert result["ratio"] > 0
    assert set(result["stages"]["ms_per_photo"]) == {"download", "decode", "detect", "embed", "db"}
    collected["pipeline"] = result


@pytest.mark.skipif(not wrk.available(), reason="wrk is not installed")
def test_search_under_load(bench: Bench, server: Server, collected: dict[str, Any]) -> None:
    result = load.run(
        bench,
        server,
        photos=data.event_photos(LFW, 2, TINY),
        selfies=data.distinct_selfies(LFW, 20),
        concurrency=(2,),
        uncached_s=1,
        cached_s=1,
        rate_limit_check=False,
        progress=print,
        parallel_check=False,
        phone_selfies=data.phone_selfies(LFW, 3),
    )
    assert result["model_bound"]["limit_req_per_s"] > 0
    (level,) = result["levels"]
    for kind in ("uncached", "cached"):
        run = level[kind]
        assert run["requests"] > 0
        assert run["ok"] + run["status_422"] > 0
        assert run["status_other"] == 0
        assert run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"] <= run["max_ms"]
    assert level["cached"]["cache_hits"] > 0
    # Distinct selfies on a cache-less server: every request ran the model, however often
    # wrk's rotation came round.
    assert level["uncached"]["cache_hits"] == 0
    assert level["uncached"]["searches"] >= level["uncached"]["ok"] > 0
    # P2's phone selfies: wrk rotates 3 of them, the cache is off, so every request searched.
    phone = result["phone"]
    assert phone["selfies"] == 3 and phone["bytes_mean"] > 100_000
    assert phone["uncached"]["requests"] > 3 and phone["uncached"]["cache_hits"] == 0
    assert phone["uncached"]["searches"] >= phone["uncached"]["ok"] > 0
    assert phone["model_bound"]["ms_median"] > 0
    collected["load"] = result


@needs_lfw
def test_event_photos_through_http(bench: Bench, server: Server, collected: dict[str, Any]) -> None:
    params = SMOKE_EP
    result = event_photos.run(
        bench, server, dataset=LFW, params=params, limit=SMOKE_EP_PHOTOS, progress=print
    )
    assert result["photos"] == SMOKE_EP_PHOTOS == 2 and result["protocol"] == "EP-12"
    assert result["p1"]["end_to_end"]["indexed"] == 2
    assert result["p1"]["ratio"] > 0 and result["p6_backends"]["ratio"] > 0
    assert set(result["p6_backends"]["photos_per_s"]) == {"onnxruntime", "openvino"}
    for key in ("precision", "recall"):
        assert _probability(result["a3"]["at_threshold"][key])
    assert result["selfies"]["phone_12mp"]["ms_median"] > 0
    # A3 over draws: two seeds of two photos each, each in its own session.
    draws = ep_draws.run(
        bench, server, dataset=LFW, params=params, draws=2, limit=2, progress=print
    )
    assert draws["seeds"] == [1, 2] and draws["photos"] == 4 and draws["draws"] == 2
    assert [d["failed"] for d in draws["per_draw"]] == [0, 0]
    assert draws["strict_threshold"] == 0.6 and draws["sweep"][-1]["threshold"] == 0.6
    assert _probability(draws["at_shipped"]["worst_precision"])
    assert draws["at_shipped"]["worst_precision"] <= draws["at_shipped"]["mean_precision"]
    result["a3_draws"] = draws
    collected["ep"] = result
