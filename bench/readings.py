"""Readings of saved suite results: from one suite's `docs/bench/<suite>.json` document, the
values a goal's limits bound (goals.py), in words, and how the run falls short of the goal's
protocol. Also the helpers the report's sections share to read a result (its machine's cores,
P2's c=10 runs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Reading:
    """What a saved result says about a goal: the values its limits bound, in words, and how
    the run falls short of the goal's protocol (None: it does not)."""

    values: dict[str, float]
    text: str
    scope: str | None = None


Reader = Callable[[dict[str, Any]], Reading | None]


def cores(result: dict[str, Any]) -> int | None:
    """The core count of the machine the result was measured on."""
    value = result.get("machine", {}).get("cores")
    return int(value) if value else None


def cores_text(result: dict[str, Any]) -> str:
    n = cores(result)
    return f"{n} cores" if n else "its cores"


def a1(r: dict[str, Any]) -> Reading | None:
    # The accuracy suite runs one LFW-Events draw: its precision is the worst draw's and its
    # recall the mean, of one draw, and the reading says so.
    ev = r.get("lfw_events")
    if not ev:
        return None
    at = ev["at_threshold"]
    return Reading(
        {"worst_precision": at["precision"], "mean_recall": at["recall"]},
        f"one draw: P {at['precision']:.4f}, R {at['recall']:.4f} at {at['threshold']:.2f}",
        scope="one draw",
    )


#: A1's draws (BENCHMARKS.md "Many draws"); goals.A1_DRAWS.
A1_DRAWS = 20


def a1_draws(r: dict[str, Any]) -> Reading | None:
    """A1 from the calibration suite: the worst draw's precision and the mean recall at the
    shipped default as labelled (BENCHMARKS.md's protocol), over the draws it ran (fewer than
    A1_DRAWS is said as its scope); the text adds them on the verified truth, which the rule
    picks on."""
    labelled = r.get("as_labelled", r)  # results saved before the two truths: one, top-level
    at = labelled.get("at_shipped")
    if not at:
        return None
    n = int(r["draws"])
    draws = f"{n} draw{'s' * (n != 1)}"
    pick = r.get("pick")
    picked = f"the rule picks {pick['threshold']:.2f}" if pick else "the rule picks none"
    text = f"{draws}: worst P {at['worst_precision']:.4f}, mean R {at['mean_recall']:.4f} at "
    text += f"{at['threshold']:.2f}"
    verified = (r.get("verified") or {}).get("at_shipped")
    if verified:
        text += (
            f" as labelled (verified truth: worst P {verified['worst_precision']:.4f}, mean R "
            f"{verified['mean_recall']:.4f}); on the verified truth {picked}"
        )
    else:
        text += f"; {picked}"
    return Reading(
        {"worst_precision": at["worst_precision"], "mean_recall": at["mean_recall"]},
        text,
        scope=draws if n < A1_DRAWS else None,
    )


def a2(r: dict[str, Any]) -> Reading | None:
    runs = r.get("runs")
    if not runs:
        return None
    recall = min(x["detection_recall"] for x in runs)
    ident = min(x["best_face_correct"] for x in runs)
    sizes = "/".join(str(x["face_size"]) for x in runs)
    return Reading(
        {"detection_recall": recall, "identification": ident},
        f"{recall:.3f}; {ident:.3f} (worst of T={sizes})",
    )


def p1_ratio(r: dict[str, Any]) -> float | None:
    """End-to-end photos/s ÷ (cores x raw single-thread photos/s), from a pipeline result."""
    n, raw = cores(r), r.get("raw_photos_per_s")
    if not n or not raw:
        return None
    return float(r["end_to_end"]["photos_per_s"]) / (n * float(raw))


def p1(r: dict[str, Any]) -> Reading | None:
    ratio = p1_ratio(r)
    if ratio is None:
        return None
    e2e = r["end_to_end"]["photos_per_s"]
    return Reading(
        {"ratio": ratio},
        f"{ratio:.2f} = {e2e:.2f} ÷ ({cores(r)} x {r['raw_photos_per_s']:.2f}) on collages",
        scope="collages, not EP-12",
    )


def c10(r: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The c=10 wrk run of a load result, `uncached` or `cached`."""
    for level in r.get("levels", []):
        if level["connections"] == 10:
            return dict(level[kind])
    return None


def server_errors(run: dict[str, Any]) -> int:
    """Failures the server or the network caused (a 422 for a selfie without a face is the
    selfie's fault and counted apart; 429s are counted apart)."""
    return int(run["socket_errors"] + run["timeouts"] + run["status_other"])


def p2(r: dict[str, Any]) -> Reading | None:
    phone = r.get("phone")
    if not phone:
        return None
    run = phone["uncached"]
    errors = server_errors(run)
    return Reading(
        {"p95_ms": run["p95_ms"], "errors": errors},
        f"{run['p95_ms']:.0f} ms; {errors} errors ({phone['selfies']} phone selfies rotated, "
        "cache off)",
    )


def p2s(r: dict[str, Any]) -> Reading | None:
    run = c10(r, "uncached")
    if not run:
        return None
    return Reading(
        {"p95_ms": run["p95_ms"]}, f"{run['p95_ms']:.0f} ms ({server_errors(run)} errors)"
    )


def p2b(r: dict[str, Any]) -> Reading | None:
    run = c10(r, "cached")
    if not run:
        return None
    return Reading({"p95_ms": run["p95_ms"]}, f"{run['p95_ms']:.1f} ms")


def p3(v: dict[str, Any]) -> Reading | None:
    if "small_sessions" not in v:
        return None
    # What the search API runs: SQL for ordinary sessions, the in-memory matrix for huge ones.
    small = v["small_sessions"]
    big: dict[str, Any] = v.get("big_session_memory") or v["big_session"]
    recall = min(small["recall"], big["recall"])
    return Reading(
        {"p95_ms": max(small["p95_ms"], big["p95_ms"]), "recall": recall},
        f"{small['p95_ms']:.0f} ms (1k-face sessions), {big['p95_ms']:.0f} ms (100k"
        f"{', in memory' if 'big_session_memory' in v else ''}); recall {recall:.3f}",
    )


def p3m(m: dict[str, Any]) -> Reading | None:
    run = m.get("while_indexing")
    if run is None:
        return None
    after, memory = m["searchable_after"], m["matrix"]
    faces = m["plan"]["faces"]
    return Reading(
        {
            "p95_ms": run["p95_ms"],
            "exact": run["exact"],
            "searchable_s": after["max_s"],
            "process_gb": memory["process_gb"],
        },
        f"{run['p95_ms']:.0f} ms at {faces / 1e6:g}M faces while {run['photos_per_s']:g} "
        f"photos/s were indexed; {run['same_within_rounding']}/{run['queries']} answers exact; "
        f"searchable after {after['max_s']:.2f} s at most; {memory['process_gb']} GB",
        scope=None if faces >= 1_000_000 else f"{faces:,} faces, not 1M",
    )


def n1(n: dict[str, Any]) -> Reading | None:
    delay, cost = n.get("matched_after_indexed"), n.get("matching")
    if not delay or not cost:
        return None
    added = cost["added"]["p95_ms"]
    return Reading(
        {"p95_s": delay["p95_s"], "subscriptions_ms": added},
        f"matched {delay['p95_s']:.2f} s after indexed (p95, {delay['matched']} photos); "
        f"{cost['subscriptions']:,} subscriptions add {added:.2f} ms per photo (p95)",
    )


def p4(s: dict[str, Any]) -> Reading | None:
    if s.get("ratio") is None:
        return None
    return Reading({"ratio": s["ratio"]}, f"{s['ratio']:.2f} on {cores_text(s)}")


def _f1_margin(comparison: dict[str, Any]) -> float:
    return float(comparison["ours"]["f1"] - comparison["peer"]["at_tolerance"]["f1"])


def p5(p: dict[str, Any]) -> Reading | None:
    """The peer beside ours on LFW-Events and, when the run had the ep suite, on its EP draw
    (the result's `ep`): the goal asks for both, so the lower speed ratio and the lower F1
    margin are judged."""
    if p.get("speed_ratio_per_cpu_s") is None:
        return None
    parts = {"LFW-Events": p}
    ep = p.get("ep")
    if ep and ep.get("speed_ratio_per_cpu_s") is not None:
        parts[ep["protocol"]] = ep
        scope = _ep_scope(ep) if ep["protocol"] == "EP-12" else f"{ep['protocol']}, not EP-12"
    else:
        scope = "LFW-Events only, not EP-12"
    speeds = ", ".join(f"{c['speed_ratio_per_cpu_s']:.2f} on {n}" for n, c in parts.items())
    f1s = ", ".join(
        f"{c['ours']['f1']:.3f} vs {c['peer']['at_tolerance']['f1']:.3f}"
        + (f" on {n}" if len(parts) > 1 else "")
        for n, c in parts.items()
    )
    return Reading(
        {
            "speed_ratio": min(c["speed_ratio_per_cpu_s"] for c in parts.values()),
            "f1_margin": min(_f1_margin(c) for c in parts.values()),
        },
        f"{speeds}; F1 {f1s}",
        scope=scope,
    )


def _ep_scope(r: dict[str, Any]) -> str | None:
    params = r.get("parameters", {})
    reference = {"attendees": 80, "distractors": 300}
    if any(params.get(k) != v for k, v in reference.items()):
        return f"a smaller draw ({r['photos']} photos) than BENCHMARKS.md's example"
    return None


def a3(r: dict[str, Any]) -> Reading | None:
    at = r.get("a3", {}).get("at_threshold")
    if not at:
        return None
    return Reading(
        {"precision": at["precision"], "recall": at["recall"]},
        f"P {at['precision']:.4f}, R {at['recall']:.4f} at {at['threshold']:.2f} "
        f"({r['photos']} photos, {r['a3']['selfies']} phone selfies)",
        scope=_ep_scope(r),
    )


def a3_draws(r: dict[str, Any]) -> Reading | None:
    """A3 over the EP suite's many draws (bench/ep_draws.py), read like A1m."""
    draws = r.get("a3_draws")
    if not draws:
        return None
    reading = a1_draws(draws)
    if reading is None:
        return None
    photos = f"{draws['photos_per_draw']} photos per draw"
    return replace(reading, text=f"{reading.text} ({photos})")


def p1_ep(r: dict[str, Any]) -> Reading | None:
    p1 = r.get("p1")
    if not p1 or not p1.get("ratio"):
        return None
    e2e = p1["end_to_end"]["photos_per_s"]
    return Reading(
        {"ratio": p1["ratio"]},
        f"{p1['ratio']:.2f} = {e2e:.2f} ÷ ({p1['cores']} x {p1['raw_photos_per_s']:.2f}) on "
        f"{r['protocol']} ({p1['backend']})",
        scope=_ep_scope(r),
    )


def p6(r: dict[str, Any]) -> Reading | None:
    b = r.get("p6_backends")
    if not b:
        return None
    rates = b["photos_per_s"]
    return Reading(
        {"ratio": b["ratio"]},
        f"{b['ratio']:.2f} = {rates['openvino']:.3f} ÷ {rates['onnxruntime']:.3f} photos/s "
        f"({b['openvino_providers'][0]})",
        scope=_ep_scope(r),
    )
