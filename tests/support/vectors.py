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


class FacesAround:
    """Unit vectors whose cosine to a query vector (a selfie's embedding) is chosen: for query
    expansion's tests, where each similarity must be known in advance.

    `face(0.8, (u, 0.6))` is 0.8 * query + 0.6 * axis u, plus whatever its length lacks on a
    spare axis of its own, so it resembles no other face through that rest. All axes are
    orthonormal and orthogonal to the query.
    """

    def __init__(self, query: np.ndarray, axes: int = 32, seed: int = 5) -> None:
        self.query = normalise(query)
        rng = np.random.default_rng(seed)
        basis = np.linalg.qr(np.column_stack([self.query, rng.normal(size=(len(query), axes))]))[0]
        self.axes: list[np.ndarray] = list(basis.T[1:].astype(np.float32))
        self._spare = iter(self.axes[2:])

    @property
    def u(self) -> np.ndarray:
        """A direction of the query's person: how the event's cameras saw them."""
        return self.axes[0]

    @property
    def v(self) -> np.ndarray:
        """Another person's own direction: a lookalike's."""
        return self.axes[1]

    def face(self, cosine: float, *parts: tuple[np.ndarray, float]) -> np.ndarray:
        vector = cosine * self.query + sum((w * a for a, w in parts), np.zeros_like(self.query))
        rest = max(1.0 - float(vector @ vector), 0.0)
        return (vector + np.sqrt(rest) * next(self._spare)).astype(np.float32)
