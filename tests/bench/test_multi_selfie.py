"""The multi-selfie suite's pure parts (bench/multi_selfie.py, the `selfies` parameter of
bench/protocols/lfw_events.py's draw and bench/sections_multi_selfie.py): the two-selfie
split of a draw, the paired comparison of arms, the verdict, the choice of fusion and the
report section, on synthetic labels and scores: no servers (one test reads the dataset's
labels when it is there)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import calibration, data, multi_selfie
from bench.calibration_rule import across
from bench.protocols import lfw_events
from bench.protocols.lfw_events import Protocol, Scores
from bench.sections_multi_selfie import multi_selfie as section
from tests.bench.conftest import LFW, needs_lfw


def _labels(counts: dict[str, int]) -> dict[str, list[Path]]:
    return {
        name: [Path(f"{name}/{name}_{i:04d}.jpg") for i in range(1, n + 1)]
        for name, n in counts.items()
    }


LABELS = _labels({"ann": 5, "bob": 3, "cid": 9, "dee": 2, "eve": 1, "fay": 1, "gus": 4})


def _draw(selfies: int, seed: int = 3) -> tuple[list[str], list[tuple[Path, str | None]]]:
    return lfw_events.draw(
        LABELS, random.Random(seed), max_ids=10, cap=8, n_distractors=5, selfies=selfies
    )


def test_two_selfies_keep_the_attendees_and_start_the_appearances_at_the_third_image() -> None:
    one, one_images = _draw(1)
    two, two_images = _draw(2)
    assert one == two  # the same pool in the same seeded order
    assert set(one) == {"ann", "bob", "cid", "gus"}  # >= 3 images
    for name in two:
        shown = sorted(p for p, who in two_images if who == name)
        assert shown == LABELS[name][2:8]  # third image on, cap counts the selfies
        assert LABELS[name][1] not in {p for p, _ in two_images}
    assert sorted(p for p, who in one_images if who == "cid") == LABELS["cid"][1:8]
    # the distractors are drawn alike (1-2 images, one image each)
    distractors = [{p for p, who in images if who is None} for images in (one_images, two_images)]
    assert distractors[0] == distractors[1]


def test_the_one_selfie_draw_is_unchanged() -> None:
    """`selfies=1` is BENCHMARKS.md's draw: the same generator calls, the same images."""
    rng = random.Random(3)
    attendees = lfw_events.attendee_pool(LABELS)
    rng.shuffle(attendees)
    distractors = lfw_events.distractor_pool(LABELS)
    rng.shuffle(distractors)
    images: list[tuple[Path, str | None]] = []
    for name in attendees:
        images += [(path, name) for path in LABELS[name][1:8]]
    images += [(LABELS[name][0], None) for name in distractors[:5]]
    rng.shuffle(images)
    assert _draw(1) == (attendees, images)


def test_an_attendee_needs_an_appearance_after_its_selfies() -> None:
    assert lfw_events.attendee_pool(LABELS, 2) == lfw_events.attendee_pool(LABELS)
    assert lfw_events.attendee_pool(LABELS, 3) == ["ann", "cid", "gus"]  # bob: 3 images, 0 left
    with pytest.raises(ValueError, match="selfies"):
        _draw(0)


def _protocol(sets: dict[str, tuple[Path, ...]]) -> Protocol:
    return Protocol({n: paths[0] for n, paths in sets.items()}, [], [], sets)


def test_queries_give_each_attendee_its_first_selfies_in_score_order() -> None:
    sets = {"zed": (Path("z1"), Path("z2")), "amy": (Path("a1"), Path("a2"))}
    identities, files = multi_selfie.queries(_protocol(sets), 2)
    assert identities == ["amy", "zed"]
    assert files == [(Path("a1"), Path("a2")), (Path("z1"), Path("z2"))]
    assert multi_selfie.queries(_protocol(sets), 1)[1] == [(Path("a1"),), (Path("z1"),)]
    with pytest.raises(ValueError, match="fewer than 3"):
        multi_selfie.queries(_protocol(sets), 3)


def test_build_protocol_records_the_selfie_sets(tmp_path: Path) -> None:
    from PIL import Image

    rows = ["path,identity"]
    for name, n in {"ann": 3, "bob": 4, "dee": 1}.items():
        (tmp_path / name).mkdir()
        for i in range(1, n + 1):
            Image.new("RGB", (20, 20), (i * 40, 0, 0)).save(tmp_path / name / f"{name}_{i}.jpg")
            rows.append(f"{name}/{name}_{i}.jpg,{name}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    protocol = lfw_events.build_protocol(
        tmp_path, seed=1, max_ids=5, cap=8, n_distractors=1, selfies=2
    )
    assert protocol.selfie_sets == {
        "ann": (tmp_path / "ann/ann_1.jpg", tmp_path / "ann/ann_2.jpg"),
        "bob": (tmp_path / "bob/bob_1.jpg", tmp_path / "bob/bob_2.jpg"),
    }
    assert protocol.selfies == {n: paths[0] for n, paths in protocol.selfie_sets.items()}
    # ann keeps 1 appearance, bob 2, and dee's one image: 4 tiles, one collage
    assert protocol.truth == [frozenset({"ann", "bob"})]
    one = lfw_events.build_protocol(tmp_path, seed=1, max_ids=5, cap=8, n_distractors=1)
    assert one.selfie_sets == {n: (p,) for n, p in one.selfies.items()}


@needs_lfw
def test_the_two_selfie_draw_of_the_dev_half() -> None:
    """The calibration draw's attendees, none of them short of an appearance; the identities
    `drawn_identities` names are the protocol's."""
    labels = lfw_events.read_labels(LFW)
    params = data.EventsParams(seed=1)
    protocol = data.events(LFW, params, selfies=2)
    assert set(protocol.selfies) == set(data.events(LFW, params).selfies)
    assert all(len(paths) == 2 for paths in protocol.selfie_sets.values())
    who = calibration.drawn_identities(labels, params, LFW, selfies=2)
    assert [frozenset(t) & set(who.attendees) for t in who.tiles] == protocol.truth
    selfie_images = {p for paths in protocol.selfie_sets.values() for p in paths}
    shown = {(LFW / i) for tiles in who.images for i in tiles}
    assert not selfie_images & shown  # no selfie is also an appearance


def _scores(similarity: list[list[float]], relevant: list[list[bool]]) -> Scores:
    rows = len(similarity)
    return Scores(
        [f"p{i}" for i in range(rows)],
        np.array(similarity, np.float32),
        np.array(relevant, bool),
        [],
        0,
    )


RELEVANT = [[True, True, False, False], [False, True, True, False]]
TILES = [["p0", "x"], ["p0", "p1"], ["p1", "y"], ["z"]]


def test_paired_counts_what_an_arm_gains_and_loses() -> None:
    base = _scores([[0.9, 0.3, 0.1, 0.5], [0.2, 0.8, 0.3, -1]], RELEVANT)
    other = _scores([[0.9, 0.5, 0.4, 0.2], [0.2, 0.35, 0.6, 0.7]], RELEVANT)
    # at 0.36: base tp (0,0), (1,1); fp (0,3). other tp (0,0), (0,1), (1,2); fp (0,2), (1,3)
    assert multi_selfie.paired(base, other, 0.36) == {
        "gained": 2,  # (0,1), (1,2)
        "lost": 1,  # (1,1)
        "fp_added": 2,  # (0,2), (1,3)
        "fp_removed": 1,  # (0,3)
    }
    assert multi_selfie.paired(base, base, 0.36) == dict.fromkeys(
        ("gained", "lost", "fp_added", "fp_removed"), 0
    )
    assert multi_selfie.summed(
        [multi_selfie.paired(base, other, 0.36), multi_selfie.paired(other, base, 0.36)]
    ) == {"gained": 3, "lost": 3, "fp_added": 3, "fp_removed": 3}
    flipped = _scores(other.similarity.tolist(), [[not r for r in row] for row in RELEVANT])
    with pytest.raises(ValueError, match="different truths"):
        multi_selfie.paired(base, flipped, 0.36)
    with pytest.raises(ValueError, match="same draw"):
        multi_selfie.paired(base, _scores([[0.9, 0.3, 0.1, 0.5]], RELEVANT[:1]), 0.36)


def _row(mean_p: float, worst_p: float, mean_r: float, f1: float) -> dict[str, Any]:
    return {"mean_precision": mean_p, "worst_precision": worst_p, "mean_recall": mean_r,
            "mean_f1": f1}  # fmt: skip


def test_the_verdict_needs_a_recall_gain_and_the_precision_floor() -> None:
    rows = {
        multi_selfie.BASE: _row(0.998, 0.996, 0.97, 0.984),
        "mean": _row(0.998, 0.9955, 0.99, 0.994),  # gains, holds
        "max": _row(0.996, 0.993, 0.995, 0.995),  # gains more, drops below the floor
        "worse": _row(0.999, 0.999, 0.96, 0.979),  # holds, loses recall
    }
    found = multi_selfie.verdict(rows, floor=0.995)
    assert set(found) == {"mean", "max", "worse"}
    assert found["mean"]["met"] and found["mean"]["recall_gain"] == pytest.approx(0.02)
    assert not found["max"]["met"] and not found["max"]["precision_holds"]
    assert not found["worse"]["met"] and found["worse"]["precision_holds"]
    assert found["max"]["precision_change"] == pytest.approx(-0.002)


def test_the_better_fusion_keeps_the_floor_first_then_f1() -> None:
    base = _row(0.998, 0.996, 0.97, 0.984)
    holds, drops = _row(0.998, 0.9955, 0.99, 0.994), _row(0.996, 0.993, 0.995, 0.995)
    assert multi_selfie.better({multi_selfie.BASE: base, "a": holds, "b": drops}) == "a"
    higher_f1 = _row(0.998, 0.997, 0.992, 0.9951)
    assert multi_selfie.better({"a": holds, "c": higher_f1}) == "c"
    below = _row(0.99, 0.99, 0.999, 0.999)  # neither holds: the higher worst precision
    assert multi_selfie.better({"b": drops, "d": below}) == "b"
    assert multi_selfie.better({multi_selfie.BASE: base}) is None


def _result() -> dict[str, Any]:
    """A saved result's shape (bench/multi_selfie.py `run`) on two synthetic draws."""
    base = {1: _scores([[0.9, 0.3, 0.1, 0.5], [0.2, 0.8, 0.3, -1]], RELEVANT)}
    two = {1: _scores([[0.9, 0.5, 0.1, 0.2], [0.2, 0.8, 0.6, -1]], RELEVANT)}
    base[2], two[2] = base[1], two[1]
    arms = {multi_selfie.BASE: base, "2 selfies, mean": two, "2 selfies, max": base}
    at = {truth: {n: across(s, 0.36) for n, s in arms.items()} for truth in multi_selfie.TRUTHS}
    paired = {
        n: multi_selfie.summed([multi_selfie.paired(base[s], arms[n][s], 0.36) for s in (1, 2)])
        for n in arms
    }
    per_draw = [
        {
            "seed": seed,
            "photos": 4,
            "pairs": 4,
            "pairs_verified": 4,
            "arms": {
                n: {
                    **{t: lfw_events.metrics_at(s[seed], 0.36) for t in multi_selfie.TRUTHS},
                    "false_positives": calibration.false_positives(s[seed], 0.36, TILES),
                }
                for n, s in arms.items()
            },
        }
        for seed in (1, 2)
    ]
    return {
        "suite": "multi-selfie",
        "measured_at": "2026-12-04T00:00:00+00:00",
        "machine": {"cpu": "test", "cores": 2},
        "command": "python -m bench multi-selfie --draws 2",
        "parameters": {"max_ids": 150, "cap": 8, "n_distractors": 300, "seeds": [1, 2]},
        "pack": "test-pack",
        "draws": 2,
        "shipped_threshold": 0.36,
        "precision_floor": 0.995,
        "truth": "verified",
        "arms": {
            n: {
                "selfies": 1 if n == multi_selfie.BASE else 2,
                "server": "all" if n == multi_selfie.BASE else "search-api",
                "env": {} if n == multi_selfie.BASE else {"SEARCH_SELFIES_FUSION": n[-4:].strip()},
                **{t: at[t][n] for t in multi_selfie.TRUTHS},
                "selfies_without_face": 0,
                "search": {"searches": 4, "p50_ms": 40.0},
            }
            for n in arms
        },
        "paired": {
            n: dict.fromkeys(multi_selfie.TRUTHS, paired[n]) for n in arms if n != multi_selfie.BASE
        },
        "verdict": {t: multi_selfie.verdict(at[t]) for t in multi_selfie.TRUTHS},
        "better": {t: multi_selfie.better(at[t]) for t in multi_selfie.TRUTHS},
        "photos": 8,
        "pairs": 8,
        "pairs_verified": 8,
        "wall_s": 12.0,
        "per_draw": per_draw,
    }


def test_the_report_section_shows_the_arms_the_verdict_and_the_draws() -> None:
    result = _result()
    text = "\n".join(section({"multi-selfie": result}, set()))
    assert "## Several selfies" in text
    assert "python -m bench multi-selfie --draws 2" in text
    for name in result["arms"]:
        assert f"| {name} |" in text
    # 2 selfies, mean gains (0,1) and (1,2), loses nothing, removes the fp (0,3)
    assert "2 selfies, mean: +4 true photos found, 0 lost, +0 false positives, 2 removed" in text
    assert "Better fusion: **2 selfies, mean**" in text
    assert "2 selfies, max: mean recall +0.0000" in text and "**not met**" in text
    assert "| 1 | 4 | 4 |" in text  # per draw: seed, photos, pairs
    assert "- 1 selfie: 2: p0 → z (0.500, seed 1); p0 → z (0.500, seed 2)" in text
    assert "- 2 selfies, mean: 0\n" in text


def test_the_report_renders_the_section() -> None:
    from bench import markdown

    text = markdown.render({"multi-selfie": _result()}, [])
    assert "## Several selfies" in text
