"""face_recognition (dlib) on a draw's photos and selfies: run by `python -m bench peer` with the
peer's own virtualenv, so it imports nothing of FacePass (stdlib, numpy, PIL and face_recognition
only).

Usage: python peer_worker.py MANIFEST.json OUT.json
MANIFEST: {"photos": [path, ...], "selfies": [path, ...], "cpu": 0, "exif": false}. The process
pins itself to one core, then for every photo: load, `face_locations` (HOG, its default upsample
1) and `face_encodings` (its defaults); for every selfie the encoding of its largest face. OUT
holds the encodings and the times, wall and CPU.

With "exif": true every image is turned upright by its EXIF orientation before detection, as a
competent user of the library would do for camera and phone JPEGs: `load_image_file` ignores the
tag, and the HOG detector finds few faces lying on their side. LFW-Events collages carry no tag.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageOps


def _largest(locations: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    if not locations:
        return []
    return [max(locations, key=lambda box: (box[2] - box[0]) * (box[1] - box[3]))]


def _upright(path: str) -> np.ndarray:
    """The image as RGB pixels, turned as its EXIF orientation says."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def main(manifest_path: str, out_path: str) -> None:
    with open(manifest_path) as stream:
        manifest: dict[str, Any] = json.load(stream)
    os.sched_setaffinity(0, {int(manifest.get("cpu", 0))})
    import face_recognition  # type: ignore[import-not-found]  # the peer's venv only

    load: Callable[[str], Any] = (
        _upright if manifest.get("exif") else face_recognition.load_image_file
    )
    out: dict[str, Any] = {"photos": [], "selfies": []}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for path in manifest["photos"]:
        image = load(path)
        locations = face_recognition.face_locations(image)
        encodings = face_recognition.face_encodings(image, locations)
        out["photos"].append([e.tolist() for e in encodings])
    out["photos_wall_s"] = time.perf_counter() - wall0
    out["photos_cpu_s"] = time.process_time() - cpu0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for path in manifest["selfies"]:
        image = load(path)
        locations = _largest(face_recognition.face_locations(image))
        encodings = face_recognition.face_encodings(image, locations)
        out["selfies"].append(encodings[0].tolist() if encodings else None)
    out["selfies_wall_s"] = time.perf_counter() - wall0
    out["selfies_cpu_s"] = time.process_time() - cpu0
    with open(out_path, "w") as stream:
        json.dump(out, stream)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
