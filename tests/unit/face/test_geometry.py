"""Pure geometry of the engine: pass sizes, NMS across passes, quarter turns, pose ratios."""

from __future__ import annotations

import numpy as np
import pytest

from libs.common.face.passes import detector_input_size, nms, pass_scale
from libs.common.face.quality import is_extreme_pose, pose_ratios, sharpness
from libs.common.face.rotation import turn, unturn_box, unturn_points


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.7, 0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]


def test_sizes_and_scales() -> None:
    assert detector_input_size(250, 250) == (256, 256)
    assert detector_input_size(1000, 644) == (1024, 672)
    assert pass_scale(6000, 4000, 2560) == pytest.approx(2560 / 6000)
    assert pass_scale(500, 500, 640) == 1.0


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_quarter_turns_map_back(turns: int) -> None:
    image = np.zeros((30, 50, 3), np.uint8)
    image[5, 40] = 255
    row, col = np.argwhere(turn(image, turns)[:, :, 0])[0]
    back = unturn_points(np.array([[col + 0.5, row + 0.5]], np.float32), turns, 50, 30)
    assert back.tolist() == [[40.5, 5.5]]
    box = unturn_box(np.array([col, row, col + 1, row + 1], np.float32), turns, 50, 30)
    assert box.tolist() == [40, 5, 41, 6]


FRONTAL = np.array([[38, 52], [74, 52], [56, 72], [42, 92], [70, 92]], np.float32)


def test_pose_of_a_frontal_face_and_a_profile() -> None:
    yaw, pitch = pose_ratios(FRONTAL)
    assert yaw == pytest.approx(0.5) and pitch == pytest.approx(0.5)
    assert not is_extreme_pose(FRONTAL)
    profile = FRONTAL.copy()
    profile[2] = [130, 72]  # nose far beyond the right eye
    assert is_extreme_pose(profile)
    collapsed = np.repeat(FRONTAL[:1], 5, axis=0)
    assert is_extreme_pose(collapsed)


def test_pose_ignores_head_roll() -> None:
    angle = np.deg2rad(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = (FRONTAL @ rotation.T).astype(np.float32)
    assert pose_ratios(rolled) == pytest.approx(pose_ratios(FRONTAL), abs=1e-4)


def test_sharpness_falls_with_blur() -> None:
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 255, (112, 112, 3), np.uint8)
    flat = np.full((112, 112, 3), 128, np.uint8)
    assert sharpness(crop) > 1000 > sharpness(flat) == 0.0
