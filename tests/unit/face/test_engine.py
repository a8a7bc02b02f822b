"""The engine on real images and the real default pack (the images insightface ships)."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image as PILImage

from libs.common.face import FaceEngine, NoFaceError
from libs.common.face.selfie import selfie_from_bytes
from tests.support.bad_images import two_hundred_faces

from .conftest import INSIGHTFACE_IMAGES

# insightface's norm_crop calls a scikit-image API that warns about its future removal.
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

Image = npt.NDArray[np.uint8]


def variant(engine: FaceEngine, **changes: object) -> FaceEngine:
    """An engine with other gate settings, sharing the loaded models (and their settings)."""
    other = FaceEngine(engine.settings.model_copy(update=changes), engine.pack)
    other.detector, other.embedder = engine.detector, engine.embedder
    return other


def test_t1_gives_six_good_faces(engine: FaceEngine, t1: Image) -> None:
    result = engine.analyze(t1)
    assert len(result.faces) == 6 and result.rejected == ()
    assert (result.width, result.height) == (1280, 886)
    areas = [(f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]) for f in result.faces]
    assert areas == sorted(areas, reverse=True)
    for face in result.faces:
        x1, y1, x2, y2 = face.bbox
        assert 0 <= x1 < x2 <= 1280 and 0 <= y1 < y2 <= 886
        assert len(face.keypoints) == 5
        assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.keypoints)
        assert face.det_score >= 0.6
        assert face.embedding.dtype == np.float32 and face.embedding.shape == (512,)
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
    assert set(result.timings_ms) == {"detect", "align", "embed"}
    # Six different people: no two faces of the photo match each other.
    vectors = np.stack([f.embedding for f in result.faces])
    similarity = vectors @ vectors.T - np.eye(6)
    assert similarity.max() < engine.threshold


def test_batch_equals_single_photos(engine: FaceEngine, t1: Image) -> None:
    mirrored = np.ascontiguousarray(t1[:, ::-1])
    single = [engine.analyze(t1), engine.analyze(mirrored)]
    batch = engine.analyze_batch([t1, mirrored])
    for one, other in zip(single, batch, strict=True):
        assert len(one.faces) == len(other.faces) == 6
        for a, b in zip(one.faces, other.faces, strict=True):
            np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-4)


def test_mirrored_photo_finds_the_same_people(engine: FaceEngine, t1: Image) -> None:
    original = np.stack([f.embedding for f in engine.analyze(t1).faces])
    mirrored = np.stack(
        [f.embedding for f in engine.analyze(np.ascontiguousarray(t1[:, ::-1])).faces]
    )
    similarity = original @ mirrored.T
    assert (similarity.max(axis=1) >= engine.threshold).all()
    assert len(set(similarity.argmax(axis=1).tolist())) == 6  # a distinct partner for each


def test_concurrent_calls_agree(engine: FaceEngine, t1: Image) -> None:
    expected = engine.analyze(t1)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(engine.analyze, [t1] * 3))
    for result in results:
        for a, b in zip(expected.faces, result.faces, strict=True):
            np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)


def test_selfie_uses_the_main_face(engine: FaceEngine, load_image: Callable[[Path], Image]) -> None:
    hanks = load_image(INSIGHTFACE_IMAGES / "Tom_Hanks_54745.png")
    result = engine.selfie(hanks)
    assert result.faces_in_selfie == 1
    # The same face, found again in a group photo, matches; a stranger does not.
    group = np.full((900, 1400, 3), 200, np.uint8)
    group[100 : 100 + hanks.shape[0], 700 : 700 + hanks.shape[1]] = hanks
    faces = engine.analyze(group).faces
    assert max(float(f.embedding @ result.face.embedding) for f in faces) > 0.8


def test_selfie_flip_fuses_the_mirror_and_still_matches(
    engine: FaceEngine, load_image: Callable[[Path], Image]
) -> None:
    """FACE_SELFIE_FLIP: the crop and its mirror in one recogniser batch, fused into a unit
    vector that differs from the plain one and still finds the person in another image."""
    hanks = load_image(INSIGHTFACE_IMAGES / "Tom_Hanks_54745.png")
    plain = engine.selfie(hanks).face.embedding
    flip = variant(engine, selfie_flip=True)
    with mock.patch.object(flip.embedder, "predict", wraps=flip.embedder.predict) as predict:
        fused = flip.selfie(hanks).face.embedding
    assert predict.call_count == 1
    crop, mirror = predict.call_args.args[0]
    np.testing.assert_array_equal(mirror, crop[:, ::-1])
    assert fused.dtype == np.float32 and fused.shape == (512,)
    assert np.linalg.norm(fused) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(fused, plain, atol=1e-3)
    # Another image of him: shrunk to 80% and pasted into a group-sized photo.
    smaller = cv2.resize(hanks, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    photo = np.full((900, 1400, 3), 200, np.uint8)
    photo[150 : 150 + smaller.shape[0], 300 : 300 + smaller.shape[1]] = smaller
    (face,) = engine.analyze(photo).faces
    assert float(face.embedding @ fused) > engine.threshold
    assert float(face.embedding @ plain) > engine.threshold


def test_selfie_with_several_faces_says_so(engine: FaceEngine, t1: Image) -> None:
    result = engine.selfie(t1)
    assert result.faces_in_selfie == 6
    faces = engine.analyze(t1).faces
    chosen = max(faces, key=lambda f: float(f.embedding @ result.face.embedding))
    assert chosen.bbox == pytest.approx(result.face.bbox, abs=2.0)  # 480 vs 640 px passes


def test_no_face(engine: FaceEngine) -> None:
    blank = np.full((480, 640, 3), 127, np.uint8)
    assert engine.analyze(blank).faces == ()
    with pytest.raises(NoFaceError):
        engine.selfie(blank)


def test_quality_gate_reasons(engine: FaceEngine, t1: Image) -> None:
    limited = variant(engine, max_faces_per_photo=2).analyze(t1)
    everything = engine.analyze(t1).faces
    assert [f.bbox for f in limited.faces] == [f.bbox for f in everything[:2]]
    assert [r.reason for r in limited.rejected] == ["over_limit"] * 4

    assert {r.reason for r in variant(engine, min_face_size=200).analyze(t1).rejected} == {
        "too_small"
    }
    assert {r.reason for r in variant(engine, detection_threshold=0.95).analyze(t1).rejected} == {
        "low_score"
    }
    blurred = cv2.GaussianBlur(t1, (0, 0), 6)
    result = engine.analyze(blurred)
    assert result.faces == () and {r.reason for r in result.rejected} == {"blurry"}


def test_large_photo_small_faces_need_the_detail_pass(engine: FaceEngine, t1: Image) -> None:
    """t1 shrunk so faces are ~40 px, twice on a 4000 x 2400 canvas: one 640 px pass sees none."""
    small = cv2.resize(t1, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)
    canvas = np.full((2400, 4000, 3), 90, np.uint8)
    for x, y in ((300, 400), (2000, 1500)):
        canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    one_pass = FaceEngine(engine.settings.model_copy(update={"detail_max_side": 0}), engine.pack)
    assert one_pass.analyze(canvas).faces == ()
    detailed = engine.analyze(canvas)
    assert len(detailed.faces) == 12  # every face once: NMS merged the two passes' duplicates


def test_a_face_too_large_for_the_detail_pass_is_found_by_the_coarse_pass(
    engine: FaceEngine, load_image: Callable[[Path], Image]
) -> None:
    """A close-up portrait: a face of ~600 px in a 2400 px photo is past SCRFD's largest anchors
    at the detail pass's full size; the shrunk whole-photo pass finds it, once."""
    face = load_image(INSIGHTFACE_IMAGES / "Tom_Hanks_54745.png")
    big = cv2.resize(face, (1400, 1400), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((1800, 2400, 3), 90, np.uint8)
    canvas[200:1600, 500:1900] = big
    detail_only = engine.detector._detect_scaled(canvas, 1.0)
    assert not (detail_only.scores >= engine.settings.detection_threshold).any()
    result = engine.analyze(canvas)
    assert len(result.faces) == 1


def test_a_group_photo_of_small_faces_still_works_as_a_selfie(engine: FaceEngine) -> None:
    """200 faces of ~30 px in a 1280x640 JPEG: too small once decoded at half size for the
    480 px selfie pass; the second look at twice the size finds them."""
    prepared = selfie_from_bytes(engine, two_hundred_faces(), engine.settings)
    assert prepared.result.faces_in_selfie >= 150
    assert prepared.scale == 1.0  # found on the whole image
    with pytest.raises(NoFaceError):  # and a faceless selfie still says so
        selfie_from_bytes(engine, _grey_jpeg(), engine.settings)


def _grey_jpeg() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (2000, 1500), (128, 128, 128)).save(out, "JPEG")
    return out.getvalue()
