"""What the face engine returns: typed, frozen, and free of model internals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

BBox = tuple[float, float, float, float]  # x1, y1, x2, y2 in photo pixels
Keypoints = tuple[tuple[float, float], ...]  # 5 points: eyes, nose, mouth corners
RejectReason = Literal["too_small", "low_score", "blurry", "extreme_pose", "over_limit"]


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    """An indexed face; `embedding` is L2-normalised float32 of the pack's dimension."""

    bbox: BBox
    keypoints: Keypoints
    det_score: float
    embedding: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class RejectedFace:
    """A detection the quality gate kept out of the index, and why (as Rekognition's
    UnindexedFaces)."""

    bbox: BBox
    det_score: float
    reason: RejectReason


def _scale_box(box: BBox, factor: float) -> BBox:
    return (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)


@dataclass(frozen=True, slots=True)
class PhotoFaces:
    """Faces of one photo, largest first. Timings: detect / align / embed, in milliseconds
    (embed is this photo's share of a batch, by face count)."""

    faces: tuple[Face, ...]
    rejected: tuple[RejectedFace, ...]
    width: int
    height: int
    timings_ms: dict[str, float]

    def scaled(self, factor: float) -> PhotoFaces:
        """The same faces in an image `factor` times larger (a photo decoded reduced, back in
        its original pixels); embeddings and scores are unchanged."""
        if factor == 1.0:
            return self
        faces = tuple(
            Face(
                _scale_box(f.bbox, factor),
                tuple((x * factor, y * factor) for x, y in f.keypoints),
                f.det_score,
                f.embedding,
            )
            for f in self.faces
        )
        rejected = tuple(
            RejectedFace(_scale_box(r.bbox, factor), r.det_score, r.reason) for r in self.rejected
        )
        width, height = round(self.width * factor), round(self.height * factor)
        return PhotoFaces(faces, rejected, width, height, self.timings_ms)


@dataclass(frozen=True, slots=True)
class SelfieResult:
    """The selfie's face used for search: the largest one; `faces_in_selfie` counts all found."""

    face: Face
    faces_in_selfie: int
    timings_ms: dict[str, float]
