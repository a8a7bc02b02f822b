"""The quality gate's measures: sharpness of the aligned crop and head pose from 5 keypoints.

Both are cheap (no extra model): the Laplacian's variance on the 112 px aligned crop falls when
the face is out of focus or motion-blurred, and the nose's position between the eyes and the
mouth tells a profile or a strongly tilted head from a usable view.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from libs.common.face.passes import FloatArray

# Nose position as a share of the way from the left to the right eye (yaw) and from the eye line
# to the mouth line (pitch), in the face's own upright frame. A frontal face sits near 0.5. LFW
# faces span yaw -0.8..1.6 and pitch 0.1..1.0, and ArcFace still matches them: bounds of (0, 1)
# cost 5 of 611 true pairs on LFW-Events, these cost none. Beyond them the keypoints describe no
# plausible face (nose a whole eye-distance outside the eyes, or above the eyes / below the mouth).
YAW_BOUNDS = (-1.0, 2.0)
PITCH_BOUNDS = (-1.0, 2.0)


def sharpness(crop: npt.NDArray[np.uint8]) -> float:
    """Variance of the Laplacian of the grey crop; low = blurry."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def pose_ratios(keypoints: FloatArray) -> tuple[float, float]:
    """(yaw, pitch) ratios of the nose; keypoints are eyes, nose, mouth corners (SCRFD order)."""
    left_eye, right_eye, nose, mouth_left, mouth_right = keypoints.astype(np.float64)
    eye_axis = right_eye - left_eye
    eye_distance = float(np.hypot(*eye_axis))
    if eye_distance < 1e-6:
        return (float("nan"), float("nan"))
    ux, uy = eye_axis / eye_distance
    # Coordinates in the frame whose x axis runs along the eye line (removes head roll).
    nose_x = (nose - left_eye) @ (ux, uy)
    nose_y = (nose - left_eye) @ (-uy, ux)
    mouth_y = ((mouth_left + mouth_right) / 2 - left_eye) @ (-uy, ux)
    yaw = nose_x / eye_distance
    pitch = nose_y / mouth_y if abs(mouth_y) > 1e-6 else float("nan")
    return (float(yaw), float(pitch))


def is_extreme_pose(keypoints: FloatArray) -> bool:
    yaw, pitch = pose_ratios(keypoints)
    # NaN (degenerate keypoints) compares False with everything and counts as extreme.
    in_bounds = (
        YAW_BOUNDS[0] <= yaw <= YAW_BOUNDS[1] and PITCH_BOUNDS[0] <= pitch <= PITCH_BOUNDS[1]
    )
    return not in_bounds
