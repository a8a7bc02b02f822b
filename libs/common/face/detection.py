"""`FaceDetector`: SCRFD through insightface's decoder, on our session, at any photo size.

Small photos are detected at their own size (rounded up to the detector's stride), so a 250 px
selfie is not blown up to 640 px. Photos whose long side exceeds `detection_size` are shrunk for
the whole-photo pass; above `detail_min_side` a detail pass over the whole photo at up to
`detail_max_side` adds the small faces that the shrunk pass cannot see (see passes.py).

The detail pass is one detector run, not a grid of 640 px tiles: SCRFD is fully convolutional
and both runtimes take any input size, so the tiles' 25% overlap and per-call overhead were pure
cost. Measured on this project's 2-core machine (AMD EPYC, one thread, EP-12 photos decoded at
2000x1500): the detail pass took 129 ms instead of 179 ms on OpenVINO bf16 and 255 instead of
279 ms on onnxruntime, and found the same 145 faces; on LFW-Crowd at 2560 px 254-321 ms instead
of 365-483 ms, recall 1.000 / 0.996 against 1.000 / 0.997 (one face of 1,040). It costs memory
instead: one 2560x1707 pass peaks ~270 MB above the tiles' (FACE_DETAIL_MAX_SIDE caps it).
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
from libs.common.face.passes import FloatArray, detector_input_size, nms, pass_scale
from libs.common.face.session import ModelSession

ImageArray = npt.NDArray[np.uint8]

# Candidates down to this score are kept so that the engine can report them as "low_score".
# Lower candidates are mostly not faces at all (0.3 reported ~100 on a crowd photo): reporting
# them would fill the status and the indexed events with noise.
LOW_SCORE_FLOOR = 0.5
NMS_IOU = 0.4


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


class _Scrfd(SCRFD):  # type: ignore[misc]  # insightface is untyped
    """insightface's SCRFD with a faster input blob, value for value the same.

    `cv2.dnn.blobFromImage` (RGB order, minus the mean, times 1/std, planar float32) took 28 ms
    of a 146 ms detail pass on a 2000x1500 photo; split into planes and converted by numpy it
    takes ~11 ms and gives identical floats (tests/unit/face/test_detector_input.py).
    """

    def _prepare_input_blob(self, img: ImageArray, input_size: tuple[int, int]) -> FloatArray:
        height, width = img.shape[:2]
        float32 = getattr(self, "input_dtype", np.float32) == np.float32
        if (width, height) != tuple(input_size) or img.ndim != 3 or not float32:
            blob: FloatArray = super()._prepare_input_blob(img, input_size)
            return blob
        blob = np.empty((1, 3, height, width), np.float32)
        planes = cv2.split(img)  # B, G, R
        for channel in range(3):
            np.subtract(
                planes[2 - channel], np.float32(self.input_mean), out=blob[0, channel],
                dtype=np.float32,
            )  # fmt: skip
        blob *= np.float32(1.0 / self.input_std)
        return blob


class FaceDetector(FaceModel[DetectionRequest, Detections]):
    identity: ClassVar[tuple[ModelType, ModelTask]] = (
        ModelType.DETECTION,
        ModelTask.FACIAL_RECOGNITION,
    )
    depends: ClassVar[list[tuple[ModelType, ModelTask]]] = []

    def _load(self, session: ModelSession) -> None:
        # static_shape_sessions=False: insightface would otherwise build a new ORT session for
        # every input size it meets, outside our provider and thread settings.
        model = _Scrfd(
            model_file=str(self.model_path), session=session, static_shape_sessions=False
        )
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
            parts.append(self._detect_scaled(image, pass_scale(width, height, detail_side)))
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


def _resize(image: ImageArray, scale: float) -> ImageArray:
    """The image shrunk by `scale`: area-averaged, or bilinear below 2x, where bilinear already
    reads every source pixel and costs a sixth (a 24 MP photo decoded at 3000 px brought to the
    2560 px detail pass: 3.9 ms instead of 25.5 ms)."""
    if scale >= 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), dtype=np.uint8)
