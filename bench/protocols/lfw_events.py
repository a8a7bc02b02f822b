"""LFW-Events: accuracy of "find me in the event photos", on the library (no servers).

The protocol is ../shared/BENCHMARKS.md's: attendees (identities with >= 3 images) and
distractors are drawn with one seeded generator, appearances and distractor images are tiled four
at a time into 2x2 collages of 500x500 (JPEG q92), every collage is indexed, every attendee's
selfie is searched, and a photo counts as returned when its best face similarity reaches the
threshold. Scores are micro precision / recall / F1 over all (selfie, photo) pairs.
"""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from libs.common.face import FaceEngine, NoFaceError
from libs.common.imaging import decode_image

TILE = 250
COLLAGE = 2 * TILE
JPEG_QUALITY = 92
GRAY = (128, 128, 128)
# Generous caps: the eval feeds known-good files through the same decoder as the services.
_MAX_BYTES = 50 * 1024 * 1024
_MAX_PIXELS = 100_000_000
_Tile = TypeVar("_Tile")


@dataclass(frozen=True, slots=True)
class Protocol:
    """The drawn benchmark: selfie files, collage JPEGs and who is in each collage."""

    selfies: dict[str, Path]  # identity -> its first image
    collages: list[bytes]
    truth: list[frozenset[str]]  # per collage, the attendees that appear in it
    # identity -> its selfies: its first `selfies` images (`build_protocol`; the first is
    # `selfies[identity]`)
    selfie_sets: dict[str, tuple[Path, ...]] = field(default_factory=dict)


def read_labels(dataset_dir: Path) -> dict[str, list[Path]]:
    """Identity -> image paths, sorted by file name."""
    images: dict[str, list[Path]] = defaultdict(list)
    with (dataset_dir / "labels.csv").open(newline="") as stream:
        for row in csv.DictReader(stream):
            images[row["identity"]].append(dataset_dir / row["path"])
    return {name: sorted(paths, key=lambda p: p.name) for name, paths in images.items()}


def attendee_pool(labels: dict[str, list[Path]], selfies: int = 1) -> list[str]:
    """The identities a draw takes its attendees from, sorted: >= 3 images, and at least one
    more than the `selfies` each attendee is searched with (so every attendee keeps an
    appearance; with 1 or 2 selfies that is the same pool)."""
    least = max(3, selfies + 1)
    return sorted(name for name, paths in labels.items() if len(paths) >= least)


def distractor_pool(labels: dict[str, list[Path]]) -> list[str]:
    """The identities a draw takes its distractors from (1-2 images), sorted."""
    return sorted(name for name, paths in labels.items() if len(paths) <= 2)


def draw(
    labels: dict[str, list[Path]],
    rng: random.Random,
    *,
    max_ids: int,
    cap: int,
    n_distractors: int,
    selfies: int = 1,
) -> tuple[list[str], list[tuple[Path, str | None]]]:
    """BENCHMARKS.md's draw, shared by LFW-Events and Event-Photo: attendees (>= 3 images) and
    distractors (1-2 images) in seeded shuffle order; returns the attendees and their
    appearances (images after the first, up to `cap`) with one image of each distractor
    (identity None), shuffled by the same generator.

    With `selfies` > 1 (the multi-selfie suite's variant, bench/multi_selfie.py) an attendee's
    first `selfies` images are its selfies and its appearances start after them (still up to
    `cap` images in all); the pool is `attendee_pool(labels, selfies)`."""
    if selfies < 1:
        raise ValueError(f"selfies must be >= 1, not {selfies}")
    attendees = attendee_pool(labels, selfies)
    rng.shuffle(attendees)
    attendees = attendees[:max_ids]
    distractors = distractor_pool(labels)
    rng.shuffle(distractors)
    images: list[tuple[Path, str | None]] = []
    for name in attendees:
        images += [(path, name) for path in labels[name][selfies:cap]]
    images += [(labels[name][0], None) for name in distractors[:n_distractors]]
    rng.shuffle(images)
    return attendees, images


def build_protocol(
    dataset_dir: Path,
    *,
    seed: int,
    max_ids: int,
    cap: int,
    n_distractors: int,
    selfies: int = 1,
) -> Protocol:
    """The draw's collages and truth; every attendee's first `selfies` images are its selfies
    (`draw`)."""
    labels = read_labels(dataset_dir)
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw, not a secret
    attendees, tiles = draw(
        labels, rng, max_ids=max_ids, cap=cap, n_distractors=n_distractors, selfies=selfies
    )

    collages: list[bytes] = []
    truth: list[frozenset[str]] = []
    for group in in_collages(tiles):
        collages.append(_collage([path for path, _ in group]))
        truth.append(frozenset(name for _, name in group if name is not None))
    return Protocol(
        {name: labels[name][0] for name in attendees},
        collages,
        truth,
        {name: tuple(labels[name][:selfies]) for name in attendees},
    )


def in_collages(tiles: Sequence[_Tile]) -> list[Sequence[_Tile]]:
    """The drawn tiles as the collages group them: 4 at a time, in order."""
    return [tiles[start : start + 4] for start in range(0, len(tiles), 4)]


def _collage(paths: Sequence[Path]) -> bytes:
    canvas = Image.new("RGB", (COLLAGE, COLLAGE), GRAY)
    for index, path in enumerate(paths):
        with Image.open(path) as tile:
            resized = tile.convert("RGB").resize((TILE, TILE))
        canvas.paste(resized, ((index % 2) * TILE, (index // 2) * TILE))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def decode(data: bytes) -> npt.NDArray[np.uint8]:
    return decode_image(data, max_bytes=_MAX_BYTES, max_pixels=_MAX_PIXELS)


@dataclass(frozen=True, slots=True)
class Scores:
    """Best face similarity of every selfie (rows) to every photo (columns); -1: no face."""

    identities: list[str]
    similarity: npt.NDArray[np.float32]
    relevant: npt.NDArray[np.bool_]
    selfies_without_face: list[str]
    photos_faces: int


def score(
    engine: FaceEngine,
    protocol: Protocol,
    *,
    batch: int = 8,
    progress: Callable[[int], None] | None = None,
) -> Scores:
    """Index the collages with `engine.analyze_batch`, search every selfie with `selfie`."""
    photo_vectors: list[npt.NDArray[np.float32]] = []
    for start in range(0, len(protocol.collages), batch):
        chunk = protocol.collages[start : start + batch]
        for result in engine.analyze_batch([decode(data) for data in chunk]):
            photo_vectors.append(
                np.stack([f.embedding for f in result.faces])
                if result.faces
                else np.zeros((0, engine.settings.embedding_dimension), np.float32)
            )
        if progress is not None:
            progress(len(chunk))
    identities = sorted(protocol.selfies)
    similarity = np.full((len(identities), len(photo_vectors)), -1.0, np.float32)
    missing: list[str] = []
    for row, name in enumerate(identities):
        try:
            query = engine.selfie(decode(protocol.selfies[name].read_bytes())).face.embedding
        except NoFaceError:
            missing.append(name)
            continue
        for column, vectors in enumerate(photo_vectors):
            if len(vectors):
                similarity[row, column] = float(np.max(vectors @ query))
    relevant = np.array(
        [[name in present for present in protocol.truth] for name in identities], dtype=bool
    )
    faces = sum(len(v) for v in photo_vectors)
    return Scores(identities, similarity, relevant, missing, faces)


def metrics_at(scores: Scores, threshold: float) -> dict[str, float]:
    returned = scores.similarity >= threshold
    tp = int(np.sum(returned & scores.relevant))
    fp = int(np.sum(returned & ~scores.relevant))
    fn = int(np.sum(~returned & scores.relevant))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": round(threshold, 4),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def sweep(scores: Scores, thresholds: Sequence[float]) -> list[dict[str, float]]:
    return [metrics_at(scores, t) for t in thresholds]


def default_thresholds() -> list[float]:
    return [round(t, 2) for t in np.arange(0.10, 0.71, 0.01)]


def best_for_precision(rows: Sequence[dict[str, float]], floor: float) -> dict[str, float] | None:
    """The sweep row with precision >= floor and the best recall (lowest threshold on ties)."""
    ok = [row for row in rows if row["precision"] >= floor]
    return max(ok, key=lambda row: (row["recall"], -row["threshold"])) if ok else None


def report(
    scores: Scores,
    *,
    threshold: float,
    parameters: dict[str, Any],
    pack_id: str,
    top: float | None = None,
) -> dict[str, Any]:
    """Everything the CLI prints and writes as JSON; the sweep stops at `top` when given (a
    client-side sweep of a server with query expansion, bench.harness.sweep_top)."""
    rows = sweep(scores, [t for t in default_thresholds() if top is None or t <= top + 1e-9])
    return {
        "protocol": "LFW-Events",
        "parameters": parameters,
        "pack": pack_id,
        "photos": int(scores.similarity.shape[1]),
        "faces_indexed": scores.photos_faces,
        "selfies": len(scores.identities),
        "selfies_without_face": scores.selfies_without_face,
        "relevant_pairs": int(scores.relevant.sum()),
        "at_threshold": metrics_at(scores, threshold),
        "best_f1": max(rows, key=lambda row: row["f1"]),
        "best_recall_at_precision_0.99": best_for_precision(rows, 0.99),
        "best_recall_at_precision_0.995": best_for_precision(rows, 0.995),
        "sweep": rows,
    }
