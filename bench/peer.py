"""P5 — the peer: face_recognition (dlib) on the same photos as ours, LFW-Events and EP-12.

The peer lives in its own virtualenv (default `.facepass/bench-peer-venv`), made here on first
use, never in FacePass's dependencies. `face-recognition` is installed with `--no-deps`: it
requires the `dlib` distribution, which pip would compile from source (cmake, ~10+ minutes);
`dlib-bin` provides the same `dlib` module as a wheel.

It runs `peer_worker.py` pinned to one core (the photos' encodings and its times come back as
JSON) and is scored with the same protocol code as ours: a photo is returned when its nearest
face is within the tolerance (face_recognition's `compare_faces`: distance <= 0.6). Speed is
compared per CPU-second on both sides: the peer's process time on its one core, ours the CPU
time of every FacePass process (the `all` server and the stack's servers) while the same photos
were indexed end to end over HTTP in the same run — A1's collages (`run`), or the `ep` suite's
EP-12 draw (`run_ep`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import data
from bench.protocols import lfw_events
from bench.protocols.event_photos import EpParams, build

PEER_VENV = Path(".facepass/bench-peer-venv")
PEER_PACKAGES = [
    "dlib-bin==20.0.1.post1",
    "face-recognition-models==0.3.0",
    "numpy==2.4.6",
    "pillow==13.0.0",
    "click==8.5.1",
    "setuptools<81",  # face_recognition_models imports pkg_resources
]
PEER_NO_DEPS = ["face-recognition==1.3.0"]
TOLERANCE = 0.6


class PeerUnavailableError(RuntimeError):
    """The peer's virtualenv could not be made (no network, no wheel for this platform)."""


def ensure_venv(venv: Path = PEER_VENV, progress: Callable[[str], None] = print) -> Path:
    """The peer's python, after creating its virtualenv if needed."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import face_recognition, dlib"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    progress(f"P5: installing the peer into {venv} (dlib-bin, face-recognition)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *PEER_PACKAGES], check=True, capture_output=True, timeout=900)
        subprocess.run([*pip, "--no-deps", *PEER_NO_DEPS], check=True, capture_output=True)
        subprocess.run(probe, check=True, capture_output=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise PeerUnavailableError(f"{exc}: {detail.decode(errors='replace')[-2000:]}") from exc
    return python


def _distances(photos: list[list[list[float]]], selfies: list[list[float] | None]) -> np.ndarray:
    """Nearest-face distance of every selfie (rows) to every photo (columns); inf if none."""
    table = np.full((len(selfies), len(photos)), np.inf)
    for column, encodings in enumerate(photos):
        if not encodings:
            continue
        faces = np.asarray(encodings)
        for row, selfie in enumerate(selfies):
            if selfie is not None:
                table[row, column] = float(
                    np.min(np.linalg.norm(faces - np.asarray(selfie), axis=1))
                )
    return table


def score(
    out: dict[str, Any], identities: list[str], truth: list[frozenset[str]]
) -> dict[str, Any]:
    """The peer's accuracy at its tolerance and swept, as similarity = 1 - distance so the
    protocol's code applies (distance <= t  ⇔  1 - distance >= 1 - t)."""
    distance = _distances(out["photos"], out["selfies"])
    similarity = np.where(np.isfinite(distance), 1.0 - distance, -1.0).astype(np.float32)
    scores = lfw_events.Scores(
        identities=identities,
        similarity=similarity,
        relevant=np.array([[n in t for t in truth] for n in identities], dtype=bool),
        selfies_without_face=[
            n for n, s in zip(identities, out["selfies"], strict=True) if s is None
        ],
        photos_faces=sum(len(p) for p in out["photos"]),
    )
    tolerances = [round(t, 2) for t in np.arange(0.30, 0.81, 0.01)]
    rows = [{**lfw_events.metrics_at(scores, round(1 - t, 4)), "tolerance": t} for t in tolerances]
    at = {**lfw_events.metrics_at(scores, round(1 - TOLERANCE, 4)), "tolerance": TOLERANCE}
    return {
        "faces_found": scores.photos_faces,
        "selfies_without_face": scores.selfies_without_face,
        "at_tolerance": at,
        "best_f1": max(rows, key=lambda row: row["f1"]),
        "sweep": rows,
    }


def _encodings(
    python: Path,
    photos: list[bytes],
    selfies: list[bytes],
    *,
    exif: bool,
    timeout_s: float,
) -> dict[str, Any]:
    """The worker's output (encodings and times) for these JPEGs, written to a temporary
    folder; `exif`: turn every image upright by its EXIF orientation first."""
    with tempfile.TemporaryDirectory(prefix="peer-") as tmp:
        folder = Path(tmp)
        names: dict[str, list[str]] = {"photos": [], "selfies": []}
        for kind, images in (("photos", photos), ("selfies", selfies)):
            for i, image in enumerate(images):
                path = folder / f"{kind}-{i:04d}.jpg"
                path.write_bytes(image)
                names[kind].append(str(path))
        manifest = {**names, "cpu": 0, "exif": exif}
        (folder / "manifest.json").write_text(json.dumps(manifest))
        worker = Path(__file__).with_name("peer_worker.py")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        subprocess.run(
            [str(python), str(worker), str(folder / "manifest.json"), str(folder / "out.json")],
            check=True,
            timeout=timeout_s,
            env=env,
            capture_output=True,
        )
        out: dict[str, Any] = json.loads((folder / "out.json").read_text())
    return out


def _peer_side(
    out: dict[str, Any], identities: list[str], truth: list[frozenset[str]]
) -> dict[str, Any]:
    """The peer's accuracy (`score`) and speed from the worker's output."""
    photos = len(out["photos"])
    return {
        **score(out, identities, truth),
        "photos": photos,
        "photos_wall_s": round(out["photos_wall_s"], 2),
        "photos_cpu_s": round(out["photos_cpu_s"], 2),
        "photos_per_s_one_core": round(photos / out["photos_wall_s"], 3),
        "photos_per_cpu_s": round(photos / out["photos_cpu_s"], 3),
        "selfie_ms": round(1000 * out["selfies_wall_s"] / max(1, len(identities)), 1),
    }


def _ours_side(
    accuracy: dict[str, Any], threshold: float, indexing: dict[str, Any]
) -> dict[str, Any]:
    """Ours: an LFW-Events report (`accuracy`) at the shipped `threshold`, and the speed of
    indexing its photos end to end (`indexing`, with `photos_per_cpu_s`)."""
    at = accuracy["at_threshold"]
    return {
        "f1": at["f1"],
        "precision": at["precision"],
        "recall": at["recall"],
        "threshold": threshold,
        "best_f1": accuracy["best_f1"],
        **indexing,
    }


def _compared(peer: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    speed = ours["photos_per_cpu_s"]
    return {
        "peer": peer,
        "ours": ours,
        "speed_ratio_per_cpu_s": round(speed / peer["photos_per_cpu_s"], 3) if speed else None,
        "f1_higher": ours["f1"] > peer["at_tolerance"]["f1"],
    }


def run(
    dataset: Path,
    params: data.EventsParams,
    ours: dict[str, Any],
    *,
    python: Path,
    timeout_s: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """`ours` is the A1 `lfw_events` result of the same run (same photos, same selfies)."""
    protocol = data.events(dataset, params)
    identities = sorted(protocol.selfies)
    progress(f"P5: face_recognition on {len(protocol.collages)} photos, {len(identities)} selfies")
    selfies = [protocol.selfies[n].read_bytes() for n in identities]
    out = _encodings(python, protocol.collages, selfies, exif=False, timeout_s=timeout_s)
    return {
        **_compared(
            _peer_side(out, identities, protocol.truth),
            _ours_side(ours, ours["shipped_threshold"], ours["indexing"]),
        ),
        "packages": [*PEER_PACKAGES, *PEER_NO_DEPS],
    }


def run_ep(
    dataset: Path,
    params: EpParams,
    limit: int | None,
    ours: dict[str, Any],
    *,
    python: Path,
    timeout_s: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """The peer on the EP draw that the `ep` suite of the same run indexed (`ours`, its
    result): rebuilt from the same parameters and `limit`, so the same seeded photos.

    The peer gets every image turned upright by its EXIF tag (40% of EP photos and half the
    selfies are stored rotated; `load_image_file` ignores the tag, a competent user would not),
    and each attendee's 720 px selfie instead of the 12 MP one ours searched: HOG with upsample
    1 spends seconds on a 12 MP image, speed is compared on the photos only, and the smaller
    selfie spares the peer that time (its face is still ~170 px). Measured on one core of a
    2-core AMD EPYC: 5-6 CPU-s per 12 MP photo, so ~10 min for the default draw (~90 photos).
    """
    ep = build(dataset, params, limit=limit)
    if len(ep.photos) != ours["photos"]:
        raise ValueError(f"the rebuilt draw has {len(ep.photos)} photos, ep's {ours['photos']}")
    identities = sorted(ep.small_selfies)
    progress(
        f"P5: face_recognition on {len(ep.photos)} {params.name} photos, "
        f"{len(identities)} 720 px selfies"
    )
    selfies = [ep.small_selfies[n] for n in identities]
    out = _encodings(python, ep.photos, selfies, exif=True, timeout_s=timeout_s)
    a3, e2e = ours["a3"], ours["p1"]["end_to_end"]
    cpu_s = e2e["cpu_s"]  # of the server and the stack while indexing, as A1's
    indexing = {**e2e, "photos_per_cpu_s": round(e2e["indexed"] / cpu_s, 3) if cpu_s else None}
    return {
        "protocol": params.name,
        "parameters": params.as_dict(),
        "photos": len(ep.photos),
        **_compared(
            _peer_side(out, identities, ep.truth),
            _ours_side(a3, a3["at_threshold"]["threshold"], indexing),
        ),
    }
