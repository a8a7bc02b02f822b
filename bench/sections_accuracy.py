"""The accuracy sections of docs/benchmarks.md: A1 through HTTP (and the group photos) and A2 on
the library (see markdown.py; A1 over many draws, the calibration suite, is
sections_calibration.py)."""

from __future__ import annotations

from typing import Any

from bench import goals
from bench.sections import Results, image, missed, provenance


def _pr_row(row: dict[str, Any], label: str = "") -> str:
    return (
        f"| {row['threshold']:.2f}{label} | {row['precision']:.4f} | {row['recall']:.4f} | "
        f"{row['f1']:.4f} | {row['fp']} | {row['fn']} |"
    )


def accuracy(results: Results, images: set[str]) -> list[str]:
    r = results["accuracy"]
    ev = r["lfw_events"]
    p = ev["parameters"]
    at = ev["at_threshold"]
    lines = [
        "## A1 — LFW-Events through the HTTP API",
        "",
        provenance(r),
        "",
        f"Draw: seed {p['seed']}, {p['max_ids']} attendees, cap {p['cap']}, "
        f"{p['n_distractors']} distractors → {ev['photos']} collages indexed with "
        f"POST /api/v2/index ({ev['faces_indexed']} faces), {ev['selfies']} selfies searched with "
        f"POST /api/v2/search ({len(ev['selfies_without_face'])} without a face), "
        f"{ev['relevant_pairs']} relevant (selfie, photo) pairs; pack `{ev['pack']}`. One search "
        "per selfie at threshold 0.10 (the bench server's SEARCH_MIN_THRESHOLD), swept "
        "client-side.",
        "",
        "| threshold | precision | recall | F1 | fp | fn |",
        "|---|---|---|---|---|---|",
    ]
    shown: set[float] = set()
    special = {
        ev["shipped_threshold"]: " (**shipped**)",
        ev["best_f1"]["threshold"]: " (best F1)",
    }
    if ev.get("best_recall_at_precision_0.995"):
        special.setdefault(ev["best_recall_at_precision_0.995"]["threshold"], " (best R, P≥0.995)")
    for row in ev["sweep"]:
        t = row["threshold"]
        if (0.28 <= t <= 0.5 and round(t * 100) % 2 == 0) or t in special:
            lines.append(_pr_row(row, special.get(t, "")))
            shown.add(t)
    check = ev["server_filter_check"]
    idx = ev["indexing"]
    lines += [
        "",
        f"The server's own filter at its default threshold returned the same photos as the "
        f"client-side filter for {check['same_photos']} of {check['selfies_checked']} selfies "
        "checked (similarities come back rounded to 4 decimals).",
        "",
        f"Indexing these {idx['photos']} photos end to end took {idx['wall_s']} s: "
        f"{idx['photos_per_s']} photos/s on the machine, {idx['photos_per_cpu_s']} photos per "
        f"CPU-second of all FacePass processes ({idx['cpu_s']} CPU-s: server and stack).",
        "",
    ]
    check = goals.check_of("A1", results)
    if check.met is False:
        lines += [
            f"{missed(check)} At the shipped {at['threshold']:.2f}: {at['fp']} false positives, "
            f"{at['fn']} misses. The library-level calibration on the same draw "
            "(benchmarks-faces.md) is the comparison: the HTTP path must give the same scores.",
            "",
        ]
    lines += image(images, "a1-sweep.png", "A1 threshold sweep")
    if g := r.get("group"):
        lines += [
            "### Group photos (../shared/datasets/group)",
            "",
            f"{g['photos']} photos indexed ({g['faces_indexed']} faces; the two crowd shots "
            f"contain none of the people), {g['references']} reference photos of "
            f"{g['people']} people each searched at the shipped threshold {g['threshold']}.",
            "",
            "| precision | recall | F1 | tp | fp | fn |",
            "|---|---|---|---|---|---|",
            f"| {g['precision']:.3f} | {g['recall']:.3f} | {g['f1']:.3f} | {g['tp']} | "
            f"{g['fp']} | {g['fn']} |",
            "",
        ]
        if g["misses"] or g["false_hits"]:
            lines += [f"- missed: {m}" for m in g["misses"]]
            lines += [f"- wrongly returned: {m}" for m in g["false_hits"]]
            lines.append("")
    return lines


def crowd(results: Results, images: set[str]) -> list[str]:
    r = results["crowd"]
    lines = [
        "## A2 — LFW-Crowd (library)",
        "",
        provenance(r),
        "",
        "LFW images pasted on a 6000 x 4000 canvas (BENCHMARKS.md); the face engine with one "
        "intra-op thread, the photo decoded as the embedder decodes it (half size, faces "
        "under FACE_SHARPER_CROP_BELOW aligned from the photo decoded again at full size), "
        "default detection (640 pass + one detail pass at 2560). Identified: a different "
        "image of the attendee brings the crowd photo back and its best face is the "
        "attendee's tile.",
        "",
        "| T (face px) | faces pasted | detected (recall) | faces indexed | attendees searched "
        "| identified | detect ms | embed ms | analyze ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["runs"]:
        t = x["timings_ms"]
        lines.append(
            f"| {x['face_size']} | {x['faces_pasted']} | {x['detected']} "
            f"({x['detection_recall']:.3f}) | {x['faces_indexed']} | {x['selfies_searched']} | "
            f"{x['best_face_correct']:.3f} | {t.get('detect', 0):.0f} | {t.get('embed', 0):.0f} "
            f"| {t.get('analyze_total', 0):.0f} |"
        )
    lines.append("")
    goal = goals.BY_ID["A2"]
    recall, ident = goal.limit("detection_recall"), goal.limit("identification")
    for x in r["runs"]:
        if not (recall.ok(x["detection_recall"]) and ident.ok(x["best_face_correct"])):
            lines += [
                f"**A2 missed** at T={x['face_size']}: detection recall "
                f"{x['detection_recall']:.3f} (goal {recall.text()}), identification "
                f"{x['best_face_correct']:.3f} (goal {ident.text()}). Faces of ~40 px are small "
                "for the MobileFaceNet recogniser of the default pack (see faces.md).",
                "",
            ]
    return lines
