"""The renditions bench's pure parts: the camera-like photos and the per-photo summary."""

from __future__ import annotations

import io

from PIL import Image

from bench.renditions import PhotoCost, camera_photos, summary


def test_camera_photos_are_distinct_jpegs_of_the_size_asked() -> None:
    photos = camera_photos((1200, 900), 2)
    assert len(set(photos)) == 2
    assert all(Image.open(io.BytesIO(p)).size == (1200, 900) for p in photos)


def test_the_share_is_the_renditions_over_the_rest_of_the_photos_work() -> None:
    costs = [PhotoCost(50.0, 200.0, 10.0), PhotoCost(70.0, 180.0, 15.0)]
    assert summary(costs) == {
        "decode_ms": 60.0, "faces_ms": 190.0, "renditions_ms": 12.5, "share": 0.05,
    }  # fmt: skip
