"""Model packs: pinned digests, FACE_MODEL_DIR layouts, pack.json, dimension checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from libs.common.face import FaceEngine, ModelPackError, resolve_pack
from libs.common.face.packs import (
    DEFAULT_DETECTOR,
    DEFAULT_PACK_ID,
    DEFAULT_RECOGNIZER,
    DEFAULT_THRESHOLD,
    PINNED_SHA256,
    default_pack_dir,
)
from libs.common.settings import FaceSettings


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    """The default pack's two files in an InsightFace-layout dir of their own."""
    for name in (DEFAULT_DETECTOR, DEFAULT_RECOGNIZER):
        shutil.copy(default_pack_dir() / name, tmp_path / name)
    return tmp_path


def test_default_pack_is_pinned_and_verified() -> None:
    pack = resolve_pack(None)
    assert pack.id == DEFAULT_PACK_ID
    assert pack.sha256 == PINNED_SHA256
    assert pack.dimension == 512
    assert pack.threshold == DEFAULT_THRESHOLD


def test_a_copy_of_the_default_pack_keeps_its_id(pack_copy: Path) -> None:
    assert resolve_pack(pack_copy).id == DEFAULT_PACK_ID


def test_one_flipped_byte_is_refused(pack_copy: Path) -> None:
    model = pack_copy / DEFAULT_RECOGNIZER
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ModelPackError, match=r"sha256 mismatch for w600k_mbf\.onnx"):
        FaceEngine.from_settings(FaceSettings(_env_file=None, model_dir=pack_copy))


def test_pack_json_names_files_id_threshold_and_digests(pack_copy: Path) -> None:
    (pack_copy / DEFAULT_DETECTOR).rename(pack_copy / "my_detector.onnx")
    manifest = {
        "id": "team-pack-v2",
        "threshold": 0.42,
        "detector": "my_detector.onnx",
        "sha256": {"my_detector.onnx": PINNED_SHA256[DEFAULT_DETECTOR]},
    }
    (pack_copy / "pack.json").write_text(json.dumps(manifest))
    pack = resolve_pack(pack_copy)
    assert (pack.id, pack.threshold, pack.detector.name) == (
        "team-pack-v2",
        0.42,
        "my_detector.onnx",
    )

    manifest["sha256"] = {"my_detector.onnx": "0" * 64}
    (pack_copy / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelPackError, match="sha256 mismatch"):
        resolve_pack(pack_copy)


def test_unknown_weights_get_a_content_derived_id(pack_copy: Path) -> None:
    (pack_copy / DEFAULT_RECOGNIZER).rename(pack_copy / "w600k_other.onnx")
    pack = resolve_pack(pack_copy)
    assert pack.id.startswith("custom-") and pack.dimension is None


@pytest.mark.parametrize(
    ("manifest", "message"),
    [('{"treshold": 0.3}', "Extra inputs"), ('{"recognizer": "missing.onnx"}', "not found")],
)
def test_bad_pack_json_is_a_clear_error(pack_copy: Path, manifest: str, message: str) -> None:
    (pack_copy / "pack.json").write_text(manifest)
    with pytest.raises(ModelPackError, match=message):
        resolve_pack(pack_copy)


def test_incomplete_or_missing_dir(pack_copy: Path, tmp_path: Path) -> None:
    (pack_copy / DEFAULT_RECOGNIZER).unlink()
    with pytest.raises(ModelPackError, match="no recogniser"):
        resolve_pack(pack_copy)
    with pytest.raises(ModelPackError, match="not a directory"):
        resolve_pack(tmp_path / "nowhere")


def test_dimension_mismatch_fails_at_load() -> None:
    settings = FaceSettings(_env_file=None, EMBEDDING_DIMENSION=256)
    with pytest.raises(ModelPackError, match="EMBEDDING_DIMENSION is 256"):
        FaceEngine.from_settings(settings).load()


def test_threshold_setting_overrides_the_pack() -> None:
    engine = FaceEngine.from_settings(FaceSettings(_env_file=None, similarity_threshold=0.5))
    assert engine.threshold == 0.5
    assert FaceEngine.from_settings(FaceSettings(_env_file=None)).threshold == DEFAULT_THRESHOLD
