"""The multi-selfie section of docs/benchmarks.md: one selfie beside two fused `mean` and two
fused `max` on the same two-selfie LFW-Events draws, at the shipped threshold
(bench/multi_selfie.py; see markdown.py)."""

from __future__ import annotations

from typing import Any

from bench.sections import Results, provenance

NONE = "\u2013"  # an en dash: nothing to show
_TRUTH_NAMES = {"verified": "verified truth", "as_labelled": "as labelled"}
_ON = {"verified": "on the verified truth", "as_labelled": "as labelled"}
#: How many of the most similar false positives of each arm the section names.
FALSE_POSITIVES_SHOWN = 8


def _env(arm: dict[str, Any]) -> str:
    env = ", ".join(f"{k}={v}" for k, v in arm["env"].items())
    return f"`{arm['server']}`" + (f", {env}" if env else "")


def _arms_table(r: dict[str, Any], truth: str) -> list[str]:
    floor = r["precision_floor"]
    lines = [
        "| arm | server | mean P | worst P (seed) | mean R | worst R (seed) | mean F1 | tp | fp "
        f"| fn | no face | worst P ≥ {floor} | p50 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, arm in r["arms"].items():
        row = arm[truth]
        search = arm.get("search", {})
        holds = "yes" if row["worst_precision"] >= floor else "**no**"
        p50 = f"{search['p50_ms']:.0f}" if "p50_ms" in search else NONE
        lines.append(
            f"| {name} | {_env(arm)} | {row['mean_precision']:.4f} | "
            f"{row['worst_precision']:.4f} ({row['worst_precision_seed']}) | "
            f"{row['mean_recall']:.4f} | {row['worst_recall']:.4f} ({row['worst_recall_seed']}) "
            f"| {row['mean_f1']:.4f} | {row['tp']} | {row['fp']} | {row['fn']} | "
            f"{arm['selfies_without_face']} | {holds} | {p50} |"
        )
    return lines


def _paired(r: dict[str, Any], truth: str) -> str:
    said = [
        f"{name}: +{p[truth]['gained']} true photos found, {p[truth]['lost']} lost, "
        f"+{p[truth]['fp_added']} false positives, {p[truth]['fp_removed']} removed"
        for name, p in r["paired"].items()
    ]
    return f"Beside 1 selfie, summed over the draws ({_ON[truth]}): {'; '.join(said)}."


def _conclusion(r: dict[str, Any], truth: str) -> str:
    floor = r["precision_floor"]
    parts = []
    for name, v in r["verdict"][truth].items():
        gain = f"mean recall {v['recall_gain']:+.4f}"
        worst = f"worst-draw precision {v['worst_precision']:.4f}"
        met = "**met**" if v["met"] else "**not met**"
        parts.append(f"{name}: {gain}, {worst}: {met}")
    chosen = r["better"][truth]
    base = next(iter(r["arms"]))  # the 1-selfie arm comes first
    worst = r["arms"][base][truth]["worst_precision"]
    below = "" if worst >= floor else ", itself below the floor"
    return (
        f"Target (two selfies raise mean recall and keep the worst draw's precision ≥ {floor}), "
        f"{_ON[truth]}: " + "; ".join(parts) + f" ({base}: worst-draw precision {worst:.4f}"
        f"{below}). Better fusion: **{chosen}**."
    )


def _false_positives(r: dict[str, Any]) -> list[str]:
    """Each arm's false positives that remain on the verified truth (what the result keeps)."""
    lines: list[str] = []
    for name in r["arms"]:
        found = [
            {**fp, "seed": d["seed"]}
            for d in r["per_draw"]
            for fp in d["arms"][name].get("false_positives", [])
        ]
        found.sort(key=lambda fp: (-fp["similarity"], fp["seed"]))
        shown = "; ".join(
            f"{fp['selfie']} → {', '.join(fp['tiles'])} ({fp['similarity']:.3f}, seed {fp['seed']})"
            for fp in found[:FALSE_POSITIVES_SHOWN]
        )
        lines.append(f"- {name}: {len(found)}" + (f": {shown}" if shown else ""))
    return [
        "False positives at the shipped threshold on the verified truth (selfie → the "
        "identities of the photo's tiles, most similar first):",
        "",
        *lines,
    ]


def _per_draw(r: dict[str, Any], truth: str) -> list[str]:
    names = list(r["arms"])
    head = "| seed | photos | pairs | " + " | ".join(f"{n}: P | R" for n in names) + " |"
    lines = [head, "|---|---|---" + "|---|---" * len(names) + "|"]
    for d in r["per_draw"]:
        pairs = d["pairs_verified"] if truth == "verified" else d["pairs"]
        cells = [str(d["seed"]), str(d["photos"]), str(pairs)]
        for name in names:
            at = d["arms"][name][truth]
            cells += [f"{at['precision']:.4f}", f"{at['recall']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def multi_selfie(results: Results, images: set[str]) -> list[str]:
    r = results["multi-selfie"]
    p = r["parameters"]
    seeds = p["seeds"]
    main = r["truth"]
    other = next(t for t in _TRUTH_NAMES if t != main)
    lines = [
        "## Several selfies — one selfie or two, fused `mean` or `max`",
        "",
        provenance(r),
        "",
        f"Our own variant of LFW-Events (bench/multi_selfie.py): {r['draws']} draws (seeds "
        f"{seeds[0]}..{seeds[-1]}; {p['max_ids']} attendees, cap {p['cap']}, "
        f"{p['n_distractors']} distractors each) in which every attendee has two selfies, its "
        "first and second images, and its appearances are its images from the third on; each "
        "draw indexed once into its own session on the `all` server and searched there by every "
        "arm: 1 selfie (the first image), 2 selfies in one request fused `mean` and fused "
        "`max` (SEARCH_SELFIES_FUSION, each on a `search-api` server of its own over the same "
        "stack). All at the server's default threshold "
        f"({r['shipped_threshold']:.2f}, no threshold asked), query expansion as shipped; "
        f"{r['photos']} collages, {r['pairs']} relevant pairs as labelled "
        f"({r['pairs_verified']} on the verified truth); pack `{r['pack']}`; "
        f"{r['wall_s']:.0f} s in all. Micro precision/recall/F1 per draw (the library "
        "protocol's scoring); mean and worst draw across them. *No face*: attendees whose "
        "request was refused (422) because a selfie has no face.",
        "",
        f"On the {_TRUTH_NAMES[main]} (what the calibration's rule judges on):",
        "",
        *_arms_table(r, main),
        "",
        _paired(r, main),
        "",
        _conclusion(r, main),
        "",
        *_false_positives(r),
        "",
        f"{_TRUTH_NAMES[other].capitalize()} (BENCHMARKS.md's truth):"
        if other == "as_labelled"
        else f"On the {_TRUTH_NAMES[other]}:",
        "",
        *_arms_table(r, other),
        "",
        _paired(r, other),
        "",
        _conclusion(r, other),
        "",
        f"Per draw at the shipped threshold ({_TRUTH_NAMES[main]}):",
        "",
        *_per_draw(r, main),
        "",
    ]
    return lines
