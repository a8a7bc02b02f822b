"""The calibration section of docs/benchmarks.md: A1 over many draws on two truths (as labelled
and verified), the rule that picks the default threshold, and the search-side variants compared
on the same draws (bench/calibration.py; see markdown.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bench import goals
from bench.readings import cores_text
from bench.sections import Results, missed, provenance

#: The thresholds the sweep table shows (the sweep has 0.10..0.70), and those the variants'
#: table compares beside each variant's pick (the shipped default and a lower one).
CALIBRATION_SHOWN = (0.26, 0.40)
COMPARED_AT = (0.36, 0.32)
#: How many of the most similar false positives the section lists.
FALSE_POSITIVES_SHOWN = 12

Row = dict[str, Any]
#: The base run's row in the variants' table.
BASE = "base"
NONE = "\u2013"  # an en dash: nothing to show


def _met(met: bool | None) -> str:
    return NONE if met is None else "met" if met else "**not met**"


def _row_at(result: Mapping[str, Any], threshold: float) -> Row | None:
    return next((r for r in result["sweep"] if abs(r["threshold"] - threshold) < 1e-9), None)


def _spans(runs: Iterable[Iterable[float]]) -> str:
    text = ", ".join(
        f"{a:.2f}" if a == b else f"{a:.2f}-{b:.2f}" for a, b in (tuple(run) for run in runs)
    )
    return text or "no threshold"


def _truths(r: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(as labelled, verified) aggregates; results saved before the two truths have one, at
    the top level, as labelled."""
    return r.get("as_labelled", r), r.get("verified")


def _picked(result: Mapping[str, Any]) -> str:
    chosen = result["pick"]
    return f"{chosen['threshold']:.2f}" if chosen else "none"


def calibration(results: Results, images: set[str]) -> list[str]:
    r = results["calibration"]
    p, cov = r["parameters"], r["coverage"]
    labelled, verified = _truths(r)
    ruled = verified or labelled  # the truth the rule picks on
    chosen, shipped = r["pick"], r["shipped_threshold"]
    seeds = p["seeds"]
    pairs = f"{r['pairs']} relevant pairs as labelled"
    if "pairs_verified" in r:
        pairs += f" ({r['pairs_verified']} on the verified truth)"
    took = f"{r['wall_s']:.0f} s"
    if r.get("variants"):
        took = f"{r['base_wall_s']:.0f} s, {r['wall_s']:.0f} s with the variants"
    lines = [
        "## A1 over many draws — how the default threshold is chosen",
        "",
        provenance(r),
        "",
        f"{r['draws']} LFW-Events draws (seeds {seeds[0]}..{seeds[-1]}; {p['max_ids']} "
        f"attendees, cap {p['cap']}, {p['n_distractors']} distractors each), every draw "
        f"indexed into its own session on one `all` server and each selfie searched once at "
        f"the sweep's floor, as A1: {r['photos']} collages and {pairs} in all; pack "
        f"`{r['pack']}`; {took}. Coverage of the dev half: "
        f"{cov['attendees_used']} of its {cov['attendee_pool']} attendee identities (≥ 3 "
        f"images, {cov['attendee_share']:.1%}) and {cov['distractors_used']} of its "
        f"{cov['distractor_pool']} distractor identities ({cov['distractor_share']:.1%}) were "
        "used by at least one draw.",
        "",
    ]
    if verified is not None:
        lines += [*_corrections(r), ""]
    lines += [_rule(r, ruled, labelled if verified is not None else None), ""]
    lines += [_a1(r, labelled, verified), ""]
    lines += _sweep_table(labelled, verified, shipped, chosen)
    lines += _per_draw(r, verified is not None)
    lines += _false_positives(r, verified is not None)
    if r.get("variants"):
        lines += _variants(r, labelled, verified)
    check = goals.check_of("A1m", results)
    if check.met is False:
        lines += [f"{missed(check)}", ""]
    return lines


def _corrections(r: dict[str, Any]) -> list[str]:
    c = r["corrections"]
    t = c["threshold"]
    text = (
        "**Two truths.** *As labelled* is BENCHMARKS.md's protocol: a collage shows the "
        "attendees its tiles are labelled with. *Verified* also counts the people an LFW image "
        f"shows besides its label: `{c['file']}` lists {c['images_listed']} images checked by "
        "eye (a face in the image matched the other identity's selfie; lookalikes are not "
        "listed and stay false positives), and a collage also shows X when one of its tiles is "
        f"an image listed as showing X. Over the draws this adds {c['pairs_added']} pairs; at "
        f"the shipped {t:.2f} it turns **{c['fp_removed']} of the {c['fp_as_labelled']} false "
        f"positives** into true matches ({c['fp_verified']} remain)"
    )
    if c["added_missed"]:
        text += f", and {c['added_missed']} added pairs are misses there"
    return [text + "."]


def _rule(r: dict[str, Any], ruled: dict[str, Any], labelled: dict[str, Any] | None) -> str:
    chosen = ruled["pick"]
    on = " on the verified truth" if labelled is not None else ""
    text = f"**The rule**{on}: the default is {r['rule']}. "
    if chosen:
        text += (
            f"It picks **{chosen['threshold']:.2f}** (worst-draw precision "
            f"{chosen['worst_precision']:.4f}, mean recall {chosen['mean_recall']:.4f} there)."
        )
    else:
        top = max(ruled["sweep"], key=lambda row: row["threshold"])
        text += (
            f"**No threshold of the sweep satisfies it**: at its top, {top['threshold']:.2f}, "
            f"the worst draw (seed {top['worst_precision_seed']}) has precision "
            f"{top['worst_precision']:.4f}, with {top['fp']} false positive"
            f"{'s' * (top['fp'] != 1)} over the draws that no threshold of the sweep removes "
            "(below)."
        )
    if "holding" in ruled:  # results saved before it was recorded lack it
        text += (
            f" The worst draw's precision is ≥ {r['precision_floor']} at "
            f"{_spans(ruled['holding'])} of the sweep."
        )
    if labelled is not None:
        text += (
            f" As labelled it is ≥ {r['precision_floor']} at {_spans(labelled['holding'])} and "
            f"the rule would pick {_picked(labelled)}."
        )
    return text


def _a1(r: dict[str, Any], labelled: dict[str, Any], verified: dict[str, Any] | None) -> str:
    shipped, floor = r["shipped_threshold"], r["precision_floor"]

    def at(result: dict[str, Any]) -> str:
        a = result["at_shipped"]
        return (
            f"{_met(result['a1_at_shipped'])} (worst P {a['worst_precision']:.4f}, mean R "
            f"{a['mean_recall']:.4f})"
        )

    text = (
        f"A1 (worst-draw precision ≥ {floor} and mean recall ≥ 0.99) at the shipped {shipped:.2f}"
    )
    if verified is None:
        picked = f"at the rule's pick {_met(r['a1_at_pick'])}." if r["pick"] else "none picked."
        return f"{text}: {at(labelled)}; {picked}"
    picked = f"at the rule's pick {_met(verified['a1_at_pick'])}" if r["pick"] else "no pick"
    return (
        f"{text}: on the verified truth {at(verified)}, {picked}; as labelled (what A1m "
        f"reads) {at(labelled)}."
    )


def _sweep_table(
    labelled: dict[str, Any], verified: dict[str, Any] | None, shipped: float, chosen: Row | None
) -> list[str]:
    low, high = CALIBRATION_SHOWN

    def label(t: float) -> str:
        text = " (**shipped**)" if abs(t - shipped) < 1e-9 else ""
        return text + (" (**pick**)" if chosen and t == chosen["threshold"] else "")

    def cells(row: Row, worst_r: bool = True) -> str:
        text = (
            f"{row['mean_precision']:.4f} | {row['worst_precision']:.4f} "
            f"({row['worst_precision_seed']}) | {row['mean_recall']:.4f} | "
        )
        if worst_r:
            text += f"{row['worst_recall']:.4f} ({row['worst_recall_seed']}) | "
        return text + f"{row['fp']} | {row['fn']}"

    if verified is None:
        lines = [
            "| threshold | mean P | worst P (seed) | mean R | worst R (seed) | fp | fn |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['threshold']:.2f}{label(row['threshold'])} | {cells(row)} |"
            for row in labelled["sweep"]
            if low <= row["threshold"] <= high
        ]
    else:
        lines = [
            "Verified truth, then as labelled (BENCHMARKS.md's protocol), side by side:",
            "",
            "| threshold | mean P | worst P (seed) | mean R | worst R (seed) | fp | fn "
            "| labelled: mean P | worst P (seed) | mean R | fp | fn |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in verified["sweep"]:
            t = row["threshold"]
            other = _row_at(labelled, t)
            if low <= t <= high and other:
                lines.append(f"| {t:.2f}{label(t)} | {cells(row)} | {cells(other, False)} |")
    return [*lines, "", "fp and fn are summed over the draws."]


def _per_draw(r: dict[str, Any], two: bool) -> list[str]:
    lines = ["", "Per draw at the shipped threshold:", ""]
    if not two:
        lines += [
            "| seed | photos | pairs | precision | recall | fp | fn |",
            "|---|---|---|---|---|---|---|",
        ]
        for d in r["per_draw"]:
            s = d["at_shipped"]
            lines.append(
                f"| {d['seed']} | {d['photos']} | {d['pairs']} | {s['precision']:.4f} | "
                f"{s['recall']:.4f} | {s['fp']} | {s['fn']} |"
            )
        return [*lines, ""]
    lines += [
        "| seed | photos | pairs (verified) | precision verified | as labelled | recall verified "
        "| as labelled | fp verified | as labelled | fn verified |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in r["per_draw"]:
        s, v = d["at_shipped"], d["at_shipped_verified"]
        lines.append(
            f"| {d['seed']} | {d['photos']} | {d['pairs']} ({d['pairs_verified']}) | "
            f"{v['precision']:.4f} | {s['precision']:.4f} | {v['recall']:.4f} | "
            f"{s['recall']:.4f} | {v['fp']} | {s['fp']} | {v['fn']} |"
        )
    return [*lines, ""]


def _false_positives(r: dict[str, Any], two: bool) -> list[str]:
    found = [
        {**fp, "seed": d["seed"]} for d in r["per_draw"] for fp in d.get("false_positives", [])
    ]
    lines: list[str] = []
    if found:
        found.sort(key=lambda fp: (-fp["similarity"], fp["seed"]))
        which = "that remain on the verified truth " if two else ""
        lines += [
            f"The {min(len(found), FALSE_POSITIVES_SHOWN)} most similar of the {len(found)} false "
            f"positives {which}at the shipped {r['shipped_threshold']:.2f} (selfie → the "
            "identities of the photo's tiles; LFW images sometimes show an unlabelled second "
            "person, BENCHMARKS.md):",
            "",
        ]
        lines += [
            f"- {fp['similarity']:.4f}, seed {fp['seed']}: {fp['selfie']} → "
            f"{', '.join(fp['tiles'])} (photo {fp['photo']})"
            for fp in found[:FALSE_POSITIVES_SHOWN]
        ]
        lines.append("")
    corrected: dict[tuple[str, str], list[float]] = {}
    for d in r["per_draw"]:
        for fp in d.get("corrected", []):
            for image in fp.get("shown_in", []):
                corrected.setdefault((fp["selfie"], image), []).append(fp["similarity"])
    if corrected:
        lines += [
            "The labelled false positives the corrections turned into true matches (selfie in "
            "image: draws, similarity):",
            "",
        ]
        for (selfie, image), sims in sorted(corrected.items(), key=lambda kv: -max(kv[1])):
            span = f"{min(sims):.4f}" if len(sims) == 1 else f"{min(sims):.4f}-{max(sims):.4f}"
            lines.append(f"- {selfie} in `{image}`: {len(sims)}, {span}")
        lines.append("")
    return lines


def _named(name: str, variant: Mapping[str, Any]) -> str:
    """A variant's name in the table: the base's settings, an expansion variant's sweep top."""
    top = variant.get("strict_threshold")
    limit = f"t ≤ {top:.2f}" if top is not None else ""
    if name == BASE:
        return f"{BASE} (shipped settings, `all` server{', ' + limit if limit else ''})"
    return f"{name} ({limit})" if limit else name


def _variants(
    r: dict[str, Any], labelled: dict[str, Any], verified: dict[str, Any] | None
) -> list[str]:
    variants: dict[str, dict[str, Any]] = r["variants"]
    base_search = r.get("search", {})
    truth = "verified" if verified is not None else "as_labelled"
    base = {
        "verified": verified,
        "as_labelled": labelled,
        "search": base_search,
        "strict_threshold": r.get("strict_threshold"),
    }
    rows = {BASE: base, **variants}
    lines = [
        "### Search-side variants on the same draws",
        "",
        "After the draws above, each variant got a `search-api` server of its own over the same "
        "stack (the base server's settings with the variant's switches) and searched every draw's "
        "selfies again in the draw's session, once each at the sweep's floor. With query "
        "expansion the answer is the union of the first pass and a second pass with a refined "
        "query (the first pass's matches at the strict threshold lend their faces), so for a "
        "threshold t at or below the strict threshold the client-side filter gives exactly a "
        "search at t; above it a search would lend at its own threshold, so an expansion "
        "variant's sweep (and its rule) stops at its strict threshold.",
        "",
        f"On the {'verified truth' if verified is not None else 'labels'} (worst P: the worst "
        "draw's precision; R: mean recall; A1: worst P ≥ 0.995 and mean R ≥ 0.99; p50: the "
        f"sweep searches' median time, client-side, with {cores_text(r)} shared with the base "
        "server):",
        "",
        "| variant | pick | worst P | R "
        + "".join(f"| worst P at {t:.2f} | R at {t:.2f} " for t in COMPARED_AT)
        + "| A1 at shipped | A1 at pick | expanded | p50 ms |",
        "|---|---|---|---" + "|---|---" * len(COMPARED_AT) + "|---|---|---|---|",
    ]
    for name, v in rows.items():
        result = v[truth]
        chosen = result["pick"]
        cells = [_named(name, v), _picked(result)]
        cells += (
            [f"{chosen['worst_precision']:.4f}", f"{chosen['mean_recall']:.4f}"]
            if chosen
            else [NONE, NONE]
        )
        for t in COMPARED_AT:
            at = _row_at(result, t)
            cells += (
                [f"{at['worst_precision']:.4f}", f"{at['mean_recall']:.4f}"] if at else [NONE] * 2
            )
        search = v.get("search", {})
        searches = search.get("searches", 0)
        expanded = f"{search.get('expanded', 0)} of {searches}" if v["strict_threshold"] else NONE
        cells += [
            _met(result["a1_at_shipped"]),
            _met(result["a1_at_pick"]),
            expanded,
            f"{search['p50_ms']:.0f}" if "p50_ms" in search else NONE,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if verified is not None:
        said = []
        for name, v in rows.items():
            at = v["as_labelled"]["at_shipped"]
            shown = (
                f"worst P {at['worst_precision']:.4f}, R {at['mean_recall']:.4f}" if at else NONE
            )
            said.append(f"{name} {_picked(v['as_labelled'])} ({shown})")
        shipped = r["shipped_threshold"]
        lines += [
            f"As labelled, the rule picks (worst P and mean R at {shipped:.2f}): "
            + "; ".join(said)
            + ".",
            "",
        ]
    return lines
