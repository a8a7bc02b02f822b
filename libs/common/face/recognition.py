"""`FaceEmbedder`: ArcFace embeddings of 5-point-aligned faces, batched and L2-normalised."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from insightface.utils.face_align import norm_crop

from libs.common.face.base import FaceModel, ModelTask, ModelType
from libs.common.face.passes import FloatArray
from libs.common.face.session import ModelSession

ImageArray = npt.NDArray[np.uint8]


class FaceEmbedder(FaceModel[Sequence[ImageArray], FloatArray]):
    """Embeds aligned face crops (from `align`) in chunks of `embedding_batch_size`.

    Photos get no flip test-time augmentation: it would double the recogniser time, which
    dominates a photo's cost, and on LFW-Events it won one (selfie, photo) pair in 611 at the
    shipped threshold (docs/faces.md). A selfie may (FACE_SELFIE_FLIP, `fuse_views`).
    """

    identity: ClassVar[tuple[ModelType, ModelTask]] = (
        ModelType.RECOGNITION,
        ModelTask.FACIAL_RECOGNITION,
    )
    depends: ClassVar[list[tuple[ModelType, ModelTask]]] = [
        (ModelType.DETECTION, ModelTask.FACIAL_RECOGNITION)
    ]

    def _load(self, session: ModelSession) -> None:
        # ArcFaceONNX reads the input size and the pixel normalisation from the graph.
        self._model = ArcFaceONNX(model_file=str(self.model_path), session=session)
        self._crop_size = int(self._model.input_size[0])
        self._dimension = int(session.get_outputs()[0].shape[-1])

    @property
    def dimension(self) -> int:
        self.load()
        return self._dimension

    def align(self, image: ImageArray, keypoints: FloatArray) -> ImageArray:
        """The face warped onto ArcFace's 5-point template (crop_size x crop_size, BGR)."""
        self.load()
        crop = norm_crop(image, landmark=keypoints, image_size=self._crop_size)
        return np.asarray(crop, dtype=np.uint8)

    def _predict(self, inputs: Sequence[ImageArray]) -> FloatArray:
        crops = list(inputs)
        out = np.zeros((len(crops), self._dimension), dtype=np.float32)
        step = self.settings.embedding_batch_size
        for start in range(0, len(crops), step):
            chunk = crops[start : start + step]
            out[start : start + len(chunk)] = self._model.get_feat(chunk)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalised: FloatArray = out / np.maximum(norms, 1e-12)
        return normalised


def mirrored(crop: ImageArray) -> ImageArray:
    """The aligned crop flipped left to right (ArcFace's template is symmetric)."""
    return np.ascontiguousarray(crop[:, ::-1])


def fuse_views(embeddings: FloatArray) -> FloatArray:
    """One unit vector for several views of one face (rows of unit vectors, e.g. a crop and
    its mirror): their sum, L2-normalised. A single view comes back as it is."""
    total = embeddings.sum(axis=0, dtype=np.float32)
    fused: FloatArray = total / np.maximum(np.linalg.norm(total), np.float32(1e-12))
    return fused
