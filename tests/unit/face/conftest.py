"""Fixtures of the face tests: one loaded engine per session, real images only."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import insightface
import numpy as np
import numpy.typing as npt
import pytest

from libs.common.face import FaceEngine
from libs.common.imaging import decode_image
from libs.common.settings import FaceSettings

REPO = Path(__file__).resolve().parents[3]
INSIGHTFACE_IMAGES = Path(insightface.__file__).parent / "data" / "images"


def decode_file(path: Path) -> npt.NDArray[np.uint8]:
    return decode_image(path.read_bytes(), max_bytes=50_000_000, max_pixels=100_000_000)


@pytest.fixture(scope="session")
def load_image() -> Callable[[Path], npt.NDArray[np.uint8]]:
    """Decode a file the way the services decode uploads."""
    return decode_file


@pytest.fixture(scope="session")
def settings() -> FaceSettings:
    return FaceSettings(_env_file=None)


@pytest.fixture(scope="session")
def engine(settings: FaceSettings) -> FaceEngine:
    face_engine = FaceEngine.from_settings(settings)
    face_engine.load()
    return face_engine


@pytest.fixture(scope="session")
def t1() -> npt.NDArray[np.uint8]:
    """insightface's packaged group photo: 6 faces, always available."""
    return decode_file(INSIGHTFACE_IMAGES / "t1.jpg")


@pytest.fixture(scope="session")
def group_dir() -> Path:
    """../shared/datasets/group (or $FACEPASS_SHARED_DIR/datasets/group); skipped when absent."""
    shared = Path(os.environ.get("FACEPASS_SHARED_DIR", REPO / ".." / "shared"))
    group = shared / "datasets" / "group"
    if not (group / "photos.csv").is_file():
        pytest.skip(f"labelled photos not found at {group}")
    return group
