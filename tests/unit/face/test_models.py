"""Model plumbing with fake sessions: providers, factory, lazy loading, session options; the
recogniser's pure helpers (the mirror and the fusion of views for FACE_SELFIE_FLIP)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

from libs.common.face import get_model_class
from libs.common.face.base import FaceModel, ModelTask, ModelType
from libs.common.face.detection import FaceDetector
from libs.common.face.recognition import FaceEmbedder, fuse_views, mirrored
from libs.common.face.session import ModelSession, OrtSession, select_providers
from libs.common.settings import FaceSettings

GPU_FIRST = ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_providers_follow_preference_and_skip_absent_ones() -> None:
    assert select_providers(GPU_FIRST, ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    both = ["CPUExecutionProvider", "CUDAExecutionProvider"]
    assert select_providers(GPU_FIRST, both) == GPU_FIRST
    assert select_providers(["CUDAExecutionProvider"], ["CPUExecutionProvider"]) == [
        "CPUExecutionProvider"
    ]
    with pytest.raises(RuntimeError):
        select_providers(["CUDAExecutionProvider"], ["AzureExecutionProvider"])


def test_ort_session_uses_settings() -> None:
    with (
        mock.patch("onnxruntime.InferenceSession") as session_class,
        mock.patch("onnxruntime.get_available_providers", return_value=GPU_FIRST),
    ):
        OrtSession(Path("m.onnx"), providers=GPU_FIRST, intra_op_threads=3)
    _, kwargs = session_class.call_args
    assert kwargs["providers"] == GPU_FIRST
    assert kwargs["sess_options"].intra_op_num_threads == 3
    assert kwargs["sess_options"].enable_cpu_mem_arena is False


def test_factory_maps_roles_to_classes() -> None:
    task = ModelTask.FACIAL_RECOGNITION
    assert get_model_class("det_10g.onnx", ModelType.DETECTION, task) is FaceDetector
    assert get_model_class("scrfd_500m_bnkps.onnx", ModelType.DETECTION, task) is FaceDetector
    assert get_model_class("w600k_r50.onnx", ModelType.RECOGNITION, task) is FaceEmbedder
    with pytest.raises(ValueError, match="Unknown model combination"):
        get_model_class("retinaface.onnx", ModelType.DETECTION, task)
    assert FaceEmbedder.depends == [FaceDetector.identity]


class Doubler(FaceModel[int, int]):
    identity = (ModelType.RECOGNITION, ModelTask.FACIAL_RECOGNITION)
    depends = []

    def _load(self, session: ModelSession) -> None:
        self.session = session

    def _predict(self, inputs: int) -> int:
        return 2 * inputs


def test_predict_loads_lazily_and_once() -> None:
    factory = mock.Mock(return_value=mock.Mock(spec=ModelSession))
    model = Doubler(Path("x.onnx"), FaceSettings(_env_file=None), factory)
    assert not model.loaded
    threads = [threading.Thread(target=model.predict, args=(1,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert model.predict(21) == 42
    factory.assert_called_once_with(Path("x.onnx"))


def test_embedder_batches_in_chunks_and_normalises() -> None:
    calls: list[int] = []

    def run(_names: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = next(iter(feed.values()))
        calls.append(len(batch))
        return [np.full((len(batch), 4), 3.0, np.float32)]

    session = mock.Mock(spec=ModelSession)
    session.run.side_effect = run
    session.get_inputs.return_value = [mock.Mock(shape=["None", 3, 112, 112], name="input.1")]
    session.get_outputs.return_value = [mock.Mock(shape=[1, 4], name="out")]
    settings = FaceSettings(_env_file=None, embedding_batch_size=4)
    model_path = Path(__file__).resolve().parent / "does-not-exist.onnx"
    with mock.patch("libs.common.face.recognition.ArcFaceONNX") as arcface:
        arcface.return_value.input_size = (112, 112)
        arcface.return_value.get_feat.side_effect = lambda crops: run(None, {"x": crops})[0]
        embedder = FaceEmbedder(model_path, settings, lambda _path: session)
        out = embedder.predict([np.zeros((112, 112, 3), np.uint8)] * 10)
    assert calls == [4, 4, 2]
    assert out.shape == (10, 4) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)


def test_fused_views_are_the_normalised_sum_of_unit_vectors() -> None:
    a, b = np.eye(3, dtype=np.float32)[:2]
    fused = fuse_views(np.stack([a, b]))
    assert fused.dtype == np.float32 and fused.shape == (3,)
    np.testing.assert_allclose(fused, [2**-0.5, 2**-0.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(fuse_views(a[None]), a)  # one view: unchanged
    np.testing.assert_allclose(fuse_views(np.stack([a, a])), a)
    rng = np.random.default_rng(0)
    views = rng.standard_normal((2, 512)).astype(np.float32)
    views /= np.linalg.norm(views, axis=1, keepdims=True)
    fused = fuse_views(views)
    assert np.linalg.norm(fused) == pytest.approx(1.0, abs=1e-6)
    # Half-way between the two: as close to each, and closer than they are to each other.
    assert float(fused @ views[0]) == pytest.approx(float(fused @ views[1]), abs=1e-6)
    assert float(fused @ views[0]) > float(views[0] @ views[1])


def test_the_mirror_flips_a_crop_left_to_right() -> None:
    crop = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    flipped = mirrored(crop)
    assert flipped.flags.c_contiguous and flipped.shape == crop.shape
    np.testing.assert_array_equal(flipped[:, 0], crop[:, -1])
    np.testing.assert_array_equal(mirrored(flipped), crop)
