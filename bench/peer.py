"""P5 — the peer: face_recognition (dlib) on the same LFW-Events photos, beside ours.

The peer lives in its own virtualenv (default `.facepass/bench-peer-venv`), made here on first
use, never in FacePass's dependencies. `face-recognition` is installed with `--no-deps`: it
requires the `dlib` distribution, which pip would compile from source (cmake, ~10+ minutes);
`dlib-bin` provides the same `dlib` module as a wheel.

It runs `peer_worker.py` pinned to one core (the photos' encodings and its times come back as
JSON) and is scored with the same protocol code as ours: a photo is returned when its nearest
face is within the tolerance (face_recognition's `compare_faces`: distance <= 0.6). Speed is
compared per CPU-second on both sides: the peer's process time on its one core, ours the CPU
time of every FacePass process (the `all` server and the stack's servers) while the same photos
were indexed end to end over HTTP in A1 of the same run.
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
    with tempfile.TemporaryDirectory(prefix="peer-") as tmp:
        folder = Path(tmp)
        paths = []
        for i, collage in enumerate(protocol.collages):
            paths.append(folder / f"c{i:04d}.jpg")
            paths[-1].write_bytes(collage)
        manifest = {
            "photos": [str(p) for p in paths],
            "selfies": [str(protocol.selfies[n].resolve()) for n in identities],
            "cpu": 0,
        }
        (folder / "manifest.json").write_text(json.dumps(manifest))
        progress(f"P5: face_recognition on {len(paths)} photos, {len(identities)} selfies")
        worker = Path(__file__).with_name("peer_worker.py")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        subprocess.run(
            [str(python), str(worker), str(folder / "manifest.json"), str(folder / "out.json")],
            check=True,
            timeout=timeout_s,
            env=env,
            capture_output=True,
        )
        out = json.loads((folder / "out.json").read_text())
    photos = len(protocol.collages)
    peer = {
        **score(out, identities, protocol.truth),
        "photos": photos,
        "photos_wall_s": round(out["photos_wall_s"], 2),
        "photos_cpu_s": round(out["photos_cpu_s"], 2),
        "photos_per_s_one_core": round(photos / out["photos_wall_s"], 3),
        "photos_per_cpu_s": round(photos / out["photos_cpu_s"], 3),
        "selfie_ms": round(1000 * out["selfies_wall_s"] / max(1, len(identities)), 1),
    }
    ours_speed = ours["indexing"]["photos_per_cpu_s"]
    return {
        "peer": peer,
        "ours": {
            "f1": ours["at_threshold"]["f1"],
            "precision": ours["at_threshold"]["precision"],
            "recall": ours["at_threshold"]["recall"],
            "threshold": ours["shipped_threshold"],
            "best_f1": ours["best_f1"],
            **ours["indexing"],
        },
        "speed_ratio_per_cpu_s": round(ours_speed / peer["photos_per_cpu_s"], 3)
        if ours_speed
        else None,
        "f1_higher": ours["at_threshold"]["f1"] > peer["at_tolerance"]["f1"],
        "packages": [*PEER_PACKAGES, *PEER_NO_DEPS],
    }
