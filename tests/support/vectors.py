"""Random face-like vectors and the brute-force answer every per-session query must give."""

from __future__ import annotations

import numpy as np

DIM = 512


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def event_vectors(rng: np.random.Generator, faces: int, identities: int = 20) -> np.ndarray:
    """A few identities repeated across photos, as at an event, plus noise."""
    people = normalise(rng.normal(size=(identities, DIM)))
    picks = rng.integers(0, identities, size=faces)
    return normalise(people[picks] + rng.normal(scale=0.6, size=(faces, DIM)) / np.sqrt(DIM) * 8)


def brute_force(
    vectors: np.ndarray, photo_of: list[str], query: np.ndarray, threshold: float, limit: int
) -> list[tuple[str, float]]:
    """Each photo's best similarity >= threshold, best first (ties by photo id), `limit` of them."""
    similarity = vectors @ query
    best: dict[str, float] = {}
    for photo, sim in zip(photo_of, similarity, strict=True):
        if sim >= threshold and sim > best.get(photo, -2.0):
            best[photo] = float(sim)
    return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:limit]


def queries(rng: np.random.Generator, vectors: np.ndarray, count: int) -> list[np.ndarray]:
    """Half near a face of the session (someone present), half anywhere."""
    out = []
    for q in range(count):
        base = vectors[rng.integers(len(vectors))] if q % 2 == 0 else rng.normal(size=DIM)
        out.append(normalise(base + rng.normal(scale=0.02, size=DIM)))
    return out
