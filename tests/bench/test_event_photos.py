"""The Event-Photo draw (bench/protocols/event_photos.py) and the GPU check script, on tiny
inputs: what BENCHMARKS.md's protocol asks of the photos and selfies, never a speed."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from bench import gpu_check
from bench.protocols.event_photos import ORIENTATION, EpParams, build
from tests.bench.conftest import LFW, needs_lfw

TINY_EP = EpParams(attendees=6, distractors=6)


@needs_lfw
def test_the_draw_is_camera_size_rotated_and_labelled() -> None:
    ep = build(LFW, TINY_EP)
    again = build(LFW, TINY_EP)
    assert ep.photos == again.photos  # seeded: the same draw every time
    assert len(ep.photos) == len(ep.truth) == len(ep.orientations) >= 2
    for data, orientation, count in zip(
        ep.photos, ep.orientations, ep.faces_per_photo, strict=True
    ):
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "JPEG"
            assert im.getexif().get(ORIENTATION, 1) == orientation
            upright = ImageOps.exif_transpose(im)
            assert upright.size == (4000, 3000)  # as the camera was held
        assert 1 <= count <= 10
    assert set().union(*ep.truth) == set(ep.selfies)  # every searched attendee is in a photo
    with Image.open(io.BytesIO(next(iter(ep.selfies.values())))) as selfie:
        assert ImageOps.exif_transpose(selfie).size == (3024, 4032)
    with Image.open(io.BytesIO(next(iter(ep.small_selfies.values())))) as small:
        assert max(ImageOps.exif_transpose(small).size) == 720
    assert EpParams.ep24().name == "EP-24" and TINY_EP.name == "EP-12"


@needs_lfw
def test_the_gpu_check_runs_and_reports_what_ran() -> None:
    report = gpu_check.main(
        ["--dataset", str(LFW), "--photos", "2", "--batch", "2", "--rounds", "1", "--no-cpu"]
    )
    gpu = report["gpu"]
    assert gpu["photos"] == 2 and gpu["faces"] > 0
    # Without a CUDA build the script says so: it ran on the CPU provider.
    assert gpu["providers"][0] in report["available_providers"]


def test_the_p6_limit_names_the_model_speed_ups_and_the_shared_work() -> None:
    """400 ms on onnxruntime of which 40 shared; the models 2x faster on OpenVINO: P6 = 1.82,
    and 2.5 needs the models 3x faster (360 / (400 / 2.5 - 40))."""
    from bench.sections_ep import _p6_limit

    stages = {
        "onnxruntime": {"decode": 30.0, "detect": 240.0, "align": 10.0, "embed": 120.0},
        "openvino": {"decode": 30.0, "detect": 120.0, "align": 10.0, "embed": 60.0},
    }
    text = " ".join(_p6_limit({"ms_per_photo": stages}))
    assert "detect 240.0 → 120.0 (2.00x)" in text and "embed 120.0 → 60.0 (2.00x)" in text
    assert "40.0 ms that no runtime changes" in text
    assert "3.0x faster than onnxruntime's" in text
    stages["onnxruntime"]["decode"] = stages["openvino"]["decode"] = 500.0
    assert "no model speed-up could reach it" in " ".join(_p6_limit({"ms_per_photo": stages}))
    assert _p6_limit({}) == []
