"""`FaceDetector`: SCRFD through insightface's decoder, on our session, at any photo size.

Small photos are detected at their own size (rounded up to the detector's stride), so a 250 px
selfie is not blown up to 640 px. Photos whose long side exceeds `detection_size` are shrunk for
the whole-photo pass; above `detail_min_side` a tiled detail pass at up to `detail_max_side` adds
the small faces that the shrunk pass cannot see (see tiling.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
import numpy.typing as npt
from insightface.model_zoo.scrfd import SCRFD

from libs.common.face.base import FaceModel, ModelTask, ModelType
from libs.common.face.errors import ModelPackError
from libs.common.face.session import ModelSession
from libs.common.face.tiling import (
    FloatArray,
    detector_input_size,
    nms,
    off_cut_edges,
    pass_scale,
    plan_tiles,
)

ImageArray = npt.NDArray[np.uint8]

# Candidates down to this score are kept so that the engine can report them as "low_score".
# Lower candidates are mostly not faces at all (0.3 reported ~100 on a crowd photo): reporting
# them would fill the status and the indexed events with noise.
LOW_SCORE_FLOOR = 0.5
NMS_IOU = 0.4
# A detail tile overlaps its neighbour by this share of the tile: a face up to that size (in the
# scaled photo) lies whole in some tile; larger ones are the whole-photo pass's job.
_TILE_OVERLAP = 0.25
# Boxes closer than this to a cut edge of a tile are partial faces; the neighbour has them whole.
_CUT_MARGIN = 2.0


@dataclass(frozen=True, slots=True)
class DetectionRequest:
    image: ImageArray
    detail: bool = True  # False: one whole-photo pass only (selfies: the face is large)
    size: int | None = None  # long side of the whole-photo pass; None: FACE_DETECTION_SIZE


@dataclass(frozen=True, slots=True, eq=False)
class Detections:
    """Candidates in photo pixels, best score first: boxes (N,4) x1,y1,x2,y2, kps (N,5,2)."""

    boxes: FloatArray
    scores: FloatArray
    keypoints: FloatArray

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        )

    def __len__(self) -> int:
        return len(self.scores)


class FaceDetector(FaceModel[DetectionRequest, Detections]):
    identity: ClassVar[tuple[ModelType, ModelTask]] = (
        ModelType.DETECTION,
        ModelTask.FACIAL_RECOGNITION,
    )
    depends: ClassVar[list[tuple[ModelType, ModelTask]]] = []

    def _load(self, session: ModelSession) -> None:
        # static_shape_sessions=False: insightface would otherwise build a new ORT session for
        # every input size it meets, outside our provider and thread settings.
        model = SCRFD(model_file=str(self.model_path), session=session, static_shape_sessions=False)
        if not model.use_kps:
            raise ModelPackError(f"{self.model_path.name}: the detector must output 5 keypoints")
        model.nms_thresh = NMS_IOU
        self._model = model
        self._floor = min(self.settings.detection_threshold, LOW_SCORE_FLOOR)

    def _predict(self, inputs: DetectionRequest) -> Detections:
        image = inputs.image
        height, width = image.shape[:2]
        size = inputs.size or self.settings.detection_size
        parts = [self._detect_scaled(image, pass_scale(width, height, size))]
        detail_side = self.settings.detail_max_side
        if (
            inputs.detail
            and detail_side > size
            and max(width, height) > self.settings.detail_min_side
        ):
            parts.append(self._detect_tiled(image, pass_scale(width, height, detail_side)))
        if len(parts) == 1:
            return parts[0]
        boxes = np.concatenate([p.boxes for p in parts])
        scores = np.concatenate([p.scores for p in parts])
        keypoints = np.concatenate([p.keypoints for p in parts])
        keep = nms(boxes, scores, NMS_IOU)
        return Detections(boxes[keep], scores[keep], keypoints[keep])

    def _run(self, image: ImageArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        height, width = image.shape[:2]
        det: Any
        kps: Any
        det, kps = self._model.detect(
            image, input_size=detector_input_size(width, height), det_thresh=self._floor
        )
        return (
            np.asarray(det[:, :4], np.float32),
            np.asarray(det[:, 4], np.float32),
            np.asarray(kps, np.float32).reshape(-1, 5, 2),
        )

    def _detect_scaled(self, image: ImageArray, scale: float) -> Detections:
        boxes, scores, kps = self._run(_resize(image, scale))
        return Detections(boxes / scale, scores, kps / scale)

    def _detect_tiled(self, image: ImageArray, scale: float) -> Detections:
        scaled = _resize(image, scale)
        height, width = scaled.shape[:2]
        tile_size = self.settings.detection_size
        found: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        for tile in plan_tiles(width, height, tile_size, round(tile_size * _TILE_OVERLAP)):
            boxes, scores, kps = self._run(scaled[tile.y0 : tile.y1, tile.x0 : tile.x1])
            keep = off_cut_edges(boxes, tile, _CUT_MARGIN)
            offset = np.array([tile.x0, tile.y0], np.float32)
            found.append(
                (
                    (boxes[keep] + np.tile(offset, 2)) / scale,
                    scores[keep],
                    (kps[keep] + offset) / scale,
                )
            )
        if not found:
            return Detections.empty()
        return Detections(
            np.concatenate([f[0] for f in found]),
            np.concatenate([f[1] for f in found]),
            np.concatenate([f[2] for f in found]),
        )


def _resize(image: ImageArray, scale: float) -> ImageArray:
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
