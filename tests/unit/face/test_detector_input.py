"""The detector's input blob: our faster one must be the very floats insightface would make."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from libs.common.face import FaceEngine
from libs.common.face.detection import _Scrfd


@pytest.mark.parametrize("shape", [(640, 640), (1504, 2016), (37, 64)])
def test_the_blob_equals_blob_from_image(engine: FaceEngine, shape: tuple[int, int]) -> None:
    model = engine.detector._model
    assert isinstance(model, _Scrfd)
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), np.uint8)
    size = (shape[1], shape[0])
    reference = cv2.dnn.blobFromImage(
        image, 1.0 / model.input_std, size, (model.input_mean,) * 3, swapRB=True
    )
    blob = model._prepare_input_blob(image, size)
    assert blob.dtype == np.float32 and blob.shape == reference.shape
    assert np.array_equal(blob, reference)


def test_another_size_falls_back_to_insightface(engine: FaceEngine) -> None:
    """A blob of another size than the image (insightface's resize path) is insightface's own."""
    model = engine.detector._model
    image = np.random.default_rng(1).integers(0, 256, (100, 120, 3), np.uint8)
    reference = cv2.dnn.blobFromImage(
        image, 1.0 / model.input_std, (128, 96), (model.input_mean,) * 3, swapRB=True
    )
    assert np.array_equal(model._prepare_input_blob(image, (128, 96)), reference)
