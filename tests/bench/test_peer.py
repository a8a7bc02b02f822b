"""P5's peer comparison (bench/peer.py) without the peer: scoring known encodings, the EP run's
assembly with the worker faked, the P5 reading and its report section. No servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import goals, peer, sections
from bench.protocols.event_photos import EpParams, EventPhotos

A, B = [0.0] * 128, [0.0] * 128
B[0] = 1.0  # 1.0 apart: beyond the 0.6 tolerance


def test_peer_scoring_on_known_encodings() -> None:
    """Two people, three photos: distances decide, as face_recognition's compare_faces."""
    out = {"photos": [[A], [B], [A, B]], "selfies": [A, B]}
    scored = peer.score(out, ["A", "B"], [frozenset("A"), frozenset("B"), frozenset("AB")])
    assert scored["at_tolerance"]["precision"] == 1.0
    assert scored["at_tolerance"]["recall"] == 1.0
    assert scored["faces_found"] == 4


def _ep_result(photos: int = 3, f1: float = 0.99) -> dict[str, Any]:
    """What the `ep` suite saves, as far as P5 reads it."""
    at = {"threshold": 0.36, "precision": 1.0, "recall": 0.98, "f1": f1}
    e2e = {"photos": photos, "indexed": photos, "failed": 0, "wall_s": 1.0,
           "photos_per_s": 3.0, "cpu_s": 1.5}  # fmt: skip
    return {"photos": photos, "a3": {"at_threshold": at, "best_f1": at}, "p1": {"end_to_end": e2e}}


def test_the_ep_run_scores_the_peer_on_the_draw_and_reads_ours_from_the_ep_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The peer gets the draw's photos, its 720 px selfies and EXIF uprighting; an attendee
    seen only in a photo whose face the peer missed costs it recall."""
    draw = EventPhotos(
        photos=[b"p0", b"p1", b"p2"],
        truth=[frozenset("A"), frozenset("B"), frozenset("AB")],
        orientations=[1, 6, 1],
        selfies={"A": b"A 12 MP", "B": b"B 12 MP"},
        small_selfies={"A": b"A 720", "B": b"B 720"},
        faces_per_photo=[1, 1, 2],
    )
    asked: dict[str, Any] = {}

    def encodings(
        python: Path, photos: list[bytes], selfies: list[bytes], *, exif: bool, timeout_s: float
    ) -> dict[str, Any]:
        asked.update(photos=photos, selfies=selfies, exif=exif)
        return {"photos": [[A], [], [A, B]], "selfies": [A, B], "photos_wall_s": 31.0,
                "photos_cpu_s": 30.0, "selfies_wall_s": 0.4}  # fmt: skip

    monkeypatch.setattr(peer, "build", lambda dataset, params, limit: draw)
    monkeypatch.setattr(peer, "_encodings", encodings)
    result = peer.run_ep(
        Path("lfw"), EpParams(), None, _ep_result(), python=Path("python"), timeout_s=1,
        progress=print,
    )  # fmt: skip
    assert asked == {"photos": draw.photos, "selfies": [b"A 720", b"B 720"], "exif": True}
    assert result["protocol"] == "EP-12" and result["photos"] == 3
    at = result["peer"]["at_tolerance"]
    assert (at["tp"], at["fp"], at["fn"]) == (3, 0, 1)  # B in photo 1: no face found there
    assert result["peer"]["faces_found"] == 3
    assert result["peer"]["photos_per_cpu_s"] == 0.1
    assert result["ours"]["photos_per_cpu_s"] == 2.0  # indexed ÷ the server's CPU-s
    assert result["speed_ratio_per_cpu_s"] == 20.0
    assert result["f1_higher"] is True  # 0.99 against the peer's 6/7
    with pytest.raises(ValueError, match="rebuilt draw"):
        peer.run_ep(
            Path("lfw"), EpParams(), None, _ep_result(photos=4), python=Path("python"),
            timeout_s=1, progress=print,
        )  # fmt: skip


def _comparison(speed_ratio: float, ours_f1: float, peer_f1: float) -> dict[str, Any]:
    """One side by side as `peer.run` / `peer.run_ep` make it."""
    best = {"threshold": 0.32, "f1": ours_f1}
    ours = {"threshold": 0.36, "precision": 0.99, "recall": 0.98, "f1": ours_f1, "best_f1": best,
            "photos_per_s": 6.0, "photos_per_cpu_s": 2.0 * speed_ratio}  # fmt: skip
    at = {"tolerance": 0.6, "precision": 0.4, "recall": 0.97, "f1": peer_f1}
    their = {"at_tolerance": at, "best_f1": {"tolerance": 0.53, "f1": 0.9}, "photos": 30,
             "photos_per_s_one_core": 2.0, "photos_per_cpu_s": 2.0, "selfie_ms": 100.0,
             "faces_found": 240}  # fmt: skip
    return {"peer": their, "ours": ours, "speed_ratio_per_cpu_s": speed_ratio,
            "f1_higher": ours_f1 > peer_f1}  # fmt: skip


def _peer_result(ep: dict[str, Any] | None) -> dict[str, Any]:
    result = {
        "machine": {"cpu": "Test CPU", "cores": 2, "system": "Linux", "python": "3.11"},
        "measured_at": "2026-12-01T00:00:00+00:00",
        "command": "python -m bench all",
        **_comparison(12.0, 0.99, 0.57),
    }
    if ep is not None:
        result["ep"] = {"protocol": "EP-12", "photos": 90,
                        "parameters": {"attendees": 80, "distractors": 300}, **ep}  # fmt: skip
    return result


def test_p5_without_ep_is_lfw_events_only() -> None:
    check = goals.check_of("P5", {"peer": _peer_result(None)})
    assert check.reading is not None
    assert check.reading.values["speed_ratio"] == 12.0
    assert check.reading.text == "12.00 on LFW-Events; F1 0.990 vs 0.570"
    assert check.reading.scope == "LFW-Events only, not EP-12"
    assert check.met is None  # met on LFW-Events only


def test_p5_with_ep_judges_the_lower_ratio_and_the_lower_margin() -> None:
    result = _peer_result(_comparison(4.0, 0.995, 0.98))
    check = goals.check_of("P5", {"peer": result})
    assert check.reading is not None
    assert check.reading.values["speed_ratio"] == 4.0  # EP's, below LFW-Events' 12
    assert check.reading.values["f1_margin"] == pytest.approx(0.015)  # EP's, below 0.42
    assert check.reading.text == (
        "12.00 on LFW-Events, 4.00 on EP-12; F1 0.990 vs 0.570 on LFW-Events, 0.995 vs 0.980 "
        "on EP-12"
    )
    assert check.reading.scope is None
    assert check.met is False
    both = goals.check_of("P5", {"peer": _peer_result(_comparison(15.0, 0.995, 0.98))})
    assert both.met is True
    smaller = _peer_result(_comparison(15.0, 0.995, 0.98))
    smaller["ep"].update(photos=30, parameters={"attendees": 40, "distractors": 150})
    assert goals.check_of("P5", {"peer": smaller}).met is None  # met on a smaller draw only


def test_the_p5_section_has_a_table_per_protocol_and_says_where_it_misses() -> None:
    results = {
        "peer": _peer_result(_comparison(4.0, 0.995, 0.98)),
        "pipeline": {"raw_photos_per_s": 11.0},
        "ep": {"p1": {"raw_photos_per_s": 1.5}},
    }
    text = "\n".join(sections.peer(results, set()))
    assert text.count("| **ratio** |") == 2
    assert "| **ratio** | | | | | | | **12.0** |" in text
    assert "| **ratio** | | | | | | | **4.0** |" in text
    assert "**EP-12**: the same 90 photos" in text
    assert "turned upright by its EXIF orientation" in text and "720 px selfie" in text
    assert "Peer selfie time (720 px): 100.0 ms" in text
    assert "**P5 missed**: speed ratio 4 (goal ≥ 10)." in text
    assert "F1 is higher on LFW-Events (0.990 vs 0.570); F1 is higher on EP-12" in text
    # Only EP-12 misses the ratio, and there the raw engine is 1.5 ÷ 2.0 of the peer.
    assert "On EP-12 the raw engine alone (EP-12's P1, one thread, 1.5 photos/s) is 0.75x" in text
    assert "On LFW-Events the raw engine" not in text
    alone = "\n".join(sections.peer({"peer": _peer_result(None)}, set()))
    assert alone.count("| **ratio** |") == 1 and "EP-12" not in alone
