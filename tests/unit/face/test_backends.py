"""The inference backends agree: onnxruntime and OpenVINO find the same faces and give the same
embeddings, so a pack keeps one model id and one threshold whichever runs it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from libs.common.face import FaceEngine, base, openvino_session
from libs.common.face.base import backend_for
from libs.common.settings import FaceSettings

from .conftest import INSIGHTFACE_IMAGES, REPO, decode_file

pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

Image = npt.NDArray[np.uint8]
LFW_DEV = REPO / ".." / "shared" / "datasets" / "lfw-dev"


def _engine(backend: str, precision: str = "f32") -> FaceEngine:
    settings = FaceSettings(_env_file=None, backend=backend, precision=precision)
    engine = FaceEngine.from_settings(settings)
    engine.load()
    return engine


@pytest.fixture(scope="module")
def engines() -> tuple[FaceEngine, FaceEngine]:
    return _engine("onnxruntime"), _engine("openvino")


def _photos() -> list[Image]:
    """insightface's group photo, plus 40 LFW dev faces where ../shared is there."""
    photos = [decode_file(INSIGHTFACE_IMAGES / "t1.jpg")]
    labels = LFW_DEV / "labels.csv"
    if labels.is_file():
        with labels.open() as handle:
            rows = list(csv.DictReader(handle))[:40]
        photos += [decode_file(LFW_DEV / row["path"]) for row in rows]
    return photos


def test_the_backends_are_what_they_say(engines: tuple[FaceEngine, FaceEngine]) -> None:
    ort_engine, ov_engine = engines
    assert ort_engine.detector.providers() == ["CPUExecutionProvider"]
    assert ov_engine.detector.providers()[0].startswith("OpenVINO-CPU-")


def test_openvino_finds_the_same_faces_with_the_same_embeddings(
    engines: tuple[FaceEngine, FaceEngine],
) -> None:
    ort_engine, ov_engine = engines
    cosines: list[float] = []
    for image in _photos():
        a, b = ort_engine.analyze(image), ov_engine.analyze(image)
        assert len(a.faces) == len(b.faces)
        for fa, fb in zip(a.faces, b.faces, strict=True):
            np.testing.assert_allclose(fa.bbox, fb.bbox, atol=2.0)
            cosines.append(float(fa.embedding @ fb.embedding))
    assert len(cosines) >= 6
    assert np.mean(cosines) >= 0.999
    assert min(cosines) >= 0.99


@pytest.mark.parametrize(("native", "expected"), [(True, "openvino"), (False, "onnxruntime")])
def test_auto_picks_openvino_where_the_cpu_has_bf16(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: str
) -> None:
    monkeypatch.setattr(base, "native_bf16", lambda: native)
    cpu = FaceSettings(_env_file=None, providers=["CPUExecutionProvider"])
    assert backend_for(cpu) == expected
    assert backend_for(cpu.model_copy(update={"backend": "onnxruntime"})) == "onnxruntime"
    assert backend_for(cpu.model_copy(update={"backend": "openvino"})) == "openvino"
    # CUDA is not in this onnxruntime build: asking for it first still means the CPU.
    gpu_first = FaceSettings(_env_file=None, providers=["CUDAExecutionProvider"])
    assert backend_for(gpu_first) == expected


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "f32")])
def test_auto_precision_is_bf16_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: str
) -> None:
    monkeypatch.setattr(openvino_session, "native_bf16", lambda: native)
    assert openvino_session.resolve_precision("auto") == expected
    assert openvino_session.resolve_precision("f32") == "f32"


def test_one_engine_serves_many_threads_on_openvino(
    engines: tuple[FaceEngine, FaceEngine],
) -> None:
    """Each thread gets its own infer request; results do not bleed between threads."""
    from concurrent.futures import ThreadPoolExecutor

    _, ov_engine = engines
    image = decode_file(INSIGHTFACE_IMAGES / "t1.jpg")
    mirrored = np.ascontiguousarray(image[:, ::-1])
    expected = [ov_engine.analyze(image), ov_engine.analyze(mirrored)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(ov_engine.analyze, [image, mirrored] * 4))
    for i, result in enumerate(got):
        want = expected[i % 2]
        assert len(result.faces) == len(want.faces)
        for a, b in zip(result.faces, want.faces, strict=True):
            np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)


def test_a_path_that_is_no_model_fails_at_load(tmp_path: Path) -> None:
    bogus = tmp_path / "m.onnx"
    bogus.write_bytes(b"not onnx")
    with pytest.raises(RuntimeError):
        openvino_session.OpenVinoSession(bogus, precision="f32", threads=1)
