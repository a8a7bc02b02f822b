"""Test images: those the installed packages ship (always there) and ../shared's datasets."""

from __future__ import annotations

import io
import os
from pathlib import Path

import insightface
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
INSIGHTFACE_IMAGES = Path(insightface.__file__).parent / "data" / "images"
T1 = INSIGHTFACE_IMAGES / "t1.jpg"  # 6 faces
TOM_HANKS = INSIGHTFACE_IMAGES / "Tom_Hanks_54745.png"  # 1 face


def shared_group_dir() -> Path | None:
    shared = Path(os.environ.get("FACEPASS_SHARED_DIR", REPO / ".." / "shared"))
    group = shared / "datasets" / "group"
    return group if (group / "photos.csv").is_file() else None


def jpeg_bytes(
    path: Path, *, crop: tuple[int, int, int, int] | None = None, scale: float = 1.0
) -> bytes:
    """A re-encoded (optionally cropped and scaled) JPEG of an image file."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if crop:
            im = im.crop(crop)
        if scale != 1.0:
            im = im.resize((int(im.width * scale), int(im.height * scale)))
        out = io.BytesIO()
        im.save(out, format="JPEG", quality=92)
        return out.getvalue()
