"""The EP-12 section of docs/benchmarks.md: P6, P1, A3 and selfie time on camera-size input."""

from __future__ import annotations

from bench import goals
from bench.sections import Results, missed, provenance


def event_photos(results: Results, images: set[str]) -> list[str]:
    r = results["ep"]
    p6, p1, a3, sf = r["p6_backends"], r["p1"], r["a3"], r["selfies"]
    e2e, ms = p1["end_to_end"], p1["stages"]["ms_per_photo"]
    at = a3["at_threshold"]
    lines = [
        f"## {r['protocol']} — camera-size photos and phone selfies (A3, P1, P6)",
        "",
        provenance(r),
        "",
        f"{r['photos']} photos of {r['parameters']['canvas'][0]}x{r['parameters']['canvas'][1]} "
        f"({r['photo_mb_mean']} MB mean, {r['pasted_faces']} pasted faces, "
        f"{r['stored_rotated']} stored rotated with an EXIF tag), {a3['selfies']} 12 MP phone "
        "selfies (../shared/BENCHMARKS.md, Event-Photo protocol).",
        "",
        "| run | photos/s |",
        "|---|---|",
        *(
            f"| raw engine, one thread, {b} (rounds: {', '.join(map(str, runs))}) | "
            f"{p6['photos_per_s'][b]} |"
            for b, runs in p6["runs_photos_per_s"].items()
        ),
        f"| **P6** OpenVINO ÷ onnxruntime | **{p6['ratio']}** |",
        f"| raw engine, one thread, as served ({p1['backend']}), mean of before/after | "
        f"{p1['raw_photos_per_s']} |",
        f"| end to end over HTTP (`all`, {p1['cores']} inference workers) | "
        f"{e2e['photos_per_s']} |",
        f"| **P1** end to end ÷ ({p1['cores']} x raw) | **{p1['ratio']}** |",
        "",
        "Embedder stages, mean ms per photo: "
        + ", ".join(f"{k} {v}" for k, v in ms.items())
        + f"; {e2e['failed']} failed.",
        "",
        f"A3 at the shipped threshold {at['threshold']}: precision {at['precision']:.4f}, "
        f"recall {at['recall']:.4f} (tp {at['tp']}, fp {at['fp']}, fn {at['fn']}); "
        f"{len(a3['selfies_without_face'])} selfies without a face.",
        "",
        f"Selfie time on one thread ({sf['backend']}), decode + detect + embed, median ms: "
        f"12 MP phone {sf['phone_12mp']['ms_median']}, 720 px {sf['phone_720px']['ms_median']}, "
        f"250 px LFW {sf['lfw_250px']['ms_median']}.",
        "",
    ]
    raw_cpu_s = 1 / p1["raw_photos_per_s"]
    served_cpu_s = e2e["cpu_s"] / max(e2e["indexed"], 1)
    lines += [
        f"Where P1's remainder goes: end to end the server and the stack used {served_cpu_s:.2f} "
        f"CPU-s per photo, the raw loop {raw_cpu_s:.2f}; the difference is the service's own "
        "work (HTTP upload and its checks, S3, Kafka, PostgreSQL, the stack's servers), which "
        f"shares the {p1['cores']} cores with inference and bounds P1 at "
        f"{raw_cpu_s / served_cpu_s:.2f} on this machine even with every core busy.",
        "",
    ]
    lines += _p6_limit(p6)
    if any("f32" in p for p in p6["openvino_providers"]):
        lines += [
            "P6: OpenVINO ran in f32 because this CPU has no native bf16 (precision `auto`), "
            "and in f32 it is no faster than onnxruntime on these photos, whose time is mostly "
            "640 px detector passes; `FACE_BACKEND=auto` therefore runs onnxruntime here.",
            "",
        ]
    lines += _draws(r)
    for goal_id in ("A3", "A3m", "P1", "P6"):
        check = goals.check_of(goal_id, results)
        if check.met is False:
            lines += [missed(check), ""]
    return lines


def _draws(r: Results) -> list[str]:
    """A3 over many draws (bench/ep_draws.py), when the run made them."""
    d = r.get("a3_draws")
    if not d:
        return []
    at, pick = d["at_shipped"], d["pick"]
    top = d.get("strict_threshold")
    picked = (
        f"**{pick['threshold']:.2f}** (worst P {pick['worst_precision']:.4f}, mean R "
        f"{pick['mean_recall']:.4f} there)"
        if pick
        else "none"
    )
    stops = f"; the sweep stops at the expansion strict threshold {top}" if top else ""
    lines = [
        f"**A3 over {d['draws']} draws** (seeds {d['seeds'][0]}..{d['seeds'][-1]}, the first "
        f"{d['photos_per_draw']} photos of each draw, {d['photos']} photos and {d['pairs']} "
        "attendee pairs in all, each draw in its own session, every phone selfie searched once "
        f"at the sweep's floor{stops}): "
        f"at the shipped {at['threshold']:.2f} worst-draw precision "
        f"**{at['worst_precision']:.4f}** (seed {at['worst_precision_seed']}), mean precision "
        f"{at['mean_precision']:.4f}, mean recall **{at['mean_recall']:.4f}** (worst draw "
        f"{at['worst_recall']:.4f}); fp {at['fp']}, fn {at['fn']} over the draws. A1's rule on "
        f"these draws would pick {picked}. A draw of {d['photos_per_draw']} photos holds "
        f"~{d['pairs'] / d['draws']:.0f} pairs, so one false positive moves its precision by "
        f"~{d['draws'] / d['pairs']:.3f}: the worst-draw limit asks for no false positive in any "
        "draw, and the rule on draws this small follows single pairs.",
        "",
    ]
    return lines


def _p6_limit(p6: Results) -> list[str]:
    """What bounds P6: the models' own speed-ups, diluted by the work no runtime changes."""
    stages = p6.get("ms_per_photo")
    if not stages:
        return []
    ort, ov = stages["onnxruntime"], stages["openvino"]
    shared = (ort["decode"] + ort["align"] + ov["decode"] + ov["align"]) / 2
    models_ort = ort["detect"] + ort["embed"]
    goal = goals.BY_ID["P6"].limit("ratio").value
    room = (shared + models_ort) / goal - shared
    needed = (
        f"the models would have to run {models_ort / room:.1f}x faster than onnxruntime's"
        if room > 0
        else "no model speed-up could reach it: the shared work alone is too large"
    )
    return [
        "Where P6 stops (ms per photo, one thread, the same rounds): detect "
        f"{ort['detect']} → {ov['detect']} ({ort['detect'] / ov['detect']:.2f}x), embed "
        f"{ort['embed']} → {ov['embed']} ({ort['embed'] / ov['embed']:.2f}x) — what the "
        f"runtime gives these two models on this CPU — beside {shared:.1f} ms that no runtime "
        f"changes (decode {ort['decode']} / {ov['decode']}, alignment and the quality gate "
        f"{ort['align']} / {ov['align']}). For P6 ≥ {goal:g}, {needed} "
        f"(they are {models_ort / (ov['detect'] + ov['embed']):.2f}x faster).",
        "",
    ]
