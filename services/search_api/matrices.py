"""Exact in-memory search for huge sessions.

An exact SQL scan costs about a microsecond per face: PostgreSQL reads the whole ~2 kB row of
every face of the session (measured on 2 cores: a 100k-face session 120-400 ms), while a
matrix-vector product over the same vectors in memory takes about 7 ms. So each search process
keeps the embeddings of its huge sessions (SEARCH_MATRIX_MIN_FACES faces or more) in memory,
within SEARCH_MATRIX_MEMORY_MB, dropping the least recently searched first.

Exact and never stale: a matrix answers only while its version equals the session's
`changed_at`, which every index or erasure moves in the same transaction as the faces, and the
faces and that version are read in one snapshot. A session without a current matrix is
searched by SQL (the same answer, slower) and a load is queued; loads run one at a time in the
background, at most once per SEARCH_MATRIX_REFRESH_S for a session, so a session that is being
indexed does not reload all the time.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from libs.common.db.faces import (
    Lending,
    SessionFaces,
    count_session_faces,
    load_session_faces,
)
from libs.common.log import get_logger
from libs.common.metrics import SESSION_MATRIX_BYTES, SESSION_MATRIX_LOADS
from libs.common.runtime import Runtime
from libs.common.settings import SearchSettings

log = get_logger(__name__)

Key = tuple[str, str]  # (session_id, model_id)
#: Verdicts "too small" / "too big" remembered per session version, at most this many.
_MAX_VERDICTS = 10_000
_EXTENSION = "search_api.session_matrices"


@dataclass(frozen=True)
class MatrixMatch:
    photo_id: str
    similarity: float
    bbox: list[float]
    #: The matched face's embedding when it lends (see Lending), else None.
    embedding: npt.NDArray[np.float32] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SessionMatrix:
    """One session's faces of one model pack, as of `version`, ready for a matrix product."""

    version: datetime
    photos: tuple[str, ...]
    face_photo: npt.NDArray[np.int32]  # per face: its photo's index in `photos`
    bboxes: npt.NDArray[np.float32]  # (faces, 4)
    embeddings: npt.NDArray[np.float32]  # (faces, dim), rows of unit length

    @classmethod
    def build(cls, faces: SessionFaces) -> SessionMatrix:
        photos = tuple(dict.fromkeys(faces.photo_ids))
        index = {photo: i for i, photo in enumerate(photos)}
        face_photo = np.fromiter(
            (index[p] for p in faces.photo_ids), np.int32, count=len(faces.photo_ids)
        )
        embeddings = np.stack([v.to_numpy() for v in faces.embeddings]).astype(
            np.float32, copy=False
        )
        # cosine, as the SQL's <=> computes it
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
        bboxes = np.asarray(faces.bboxes, np.float32).reshape(-1, 4)
        return cls(faces.version, photos, face_photo, bboxes, embeddings)

    @property
    def nbytes(self) -> int:
        names = sum(len(p) + 56 for p in self.photos)  # a short str object is ~56 bytes
        return self.embeddings.nbytes + self.bboxes.nbytes + self.face_photo.nbytes + names

    def search(
        self,
        embedding: npt.NDArray[np.float32],
        threshold: float,
        limit: int,
        lending: Lending | None = None,
    ) -> list[MatrixMatch]:
        """What the SQL query answers: each photo's best face at cosine similarity >=
        threshold, best first (ties by photo id), at most `limit` photos; with `lending`, the
        lenders' matches carry their face's embedding."""
        query = np.asarray(embedding, np.float32) / np.float32(np.linalg.norm(embedding))
        similarities = self.embeddings @ query
        hits = np.flatnonzero(similarities >= threshold)
        # Each photo's best face: sort the hits by photo, best first, keep each photo's first.
        hits = hits[np.lexsort((-similarities[hits], self.face_photo[hits]))]
        photo_of = self.face_photo[hits]
        first = np.ones(len(hits), bool)
        first[1:] = photo_of[1:] != photo_of[:-1]
        best = hits[first].tolist()
        best.sort(key=lambda i: (-float(similarities[i]), self.photos[self.face_photo[i]]))
        return [
            MatrixMatch(
                photo_id=self.photos[self.face_photo[i]],
                similarity=float(similarities[i]),
                bbox=self.bboxes[i].tolist(),
                embedding=self.embeddings[i].copy()
                if lending and rank < lending.faces and similarities[i] >= lending.threshold
                else None,
            )
            for rank, i in enumerate(best[:limit])
        ]


def _face_bytes(dimension: int) -> int:
    """Bytes a face takes in a matrix besides its photo's name: embedding, bbox, photo index."""
    return dimension * 4 + 4 * 4 + 4


class SessionMatrices:
    """The huge sessions this process holds in memory, and the queue of loads to make."""

    def __init__(
        self,
        settings: SearchSettings,
        dimension: int,
        pool: Callable[[], asyncpg.Pool],
        run_cpu: Callable[..., Awaitable[Any]],
    ) -> None:
        self.min_faces = settings.matrix_min_faces
        self.budget = settings.matrix_memory_mb * 1024 * 1024
        self.refresh_s = settings.matrix_refresh_s
        self.face_bytes = _face_bytes(dimension)
        self._pool = pool
        self._run_cpu = run_cpu
        self._matrices: OrderedDict[Key, SessionMatrix] = OrderedDict()
        # Sessions not worth a matrix (too few faces, or over the budget) at a version.
        self._verdicts: OrderedDict[Key, datetime] = OrderedDict()
        self._queue: asyncio.Queue[tuple[Key, datetime]] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._last_load: dict[Key, float] = {}

    def current(self, session_id: str, model_id: str, version: datetime) -> SessionMatrix | None:
        """The session's matrix if it is as of `version`; otherwise None, and a load queued
        when the session may be worth one."""
        key = (session_id, model_id)
        matrix = self._matrices.get(key)
        if matrix is not None and matrix.version == version:
            self._matrices.move_to_end(key)
            return matrix
        if self._verdicts.get(key) == version or key in self._queued:
            return None
        last = self._last_load.get(key)
        if last is not None and time.monotonic() - last < self.refresh_s:
            return None
        self._queued.add(key)
        self._queue.put_nowait((key, version))
        return None

    async def run(self) -> None:
        """The background loader: one load at a time, until cancelled."""
        while True:
            key, version = await self._queue.get()
            try:
                outcome = await self._load(key, version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the SQL path still answers; try again later
                log.warning("session matrix load failed", error=type(exc).__name__)
                outcome = "error"
            finally:
                self._queued.discard(key)
                self._last_load[key] = time.monotonic()
            SESSION_MATRIX_LOADS.labels(outcome=outcome).inc()
            self._forget_old_loads()

    async def _load(self, key: Key, version: datetime) -> str:
        session_id, model_id = key
        async with self._pool().acquire() as conn:
            count = await count_session_faces(conn, session_id, model_id)
            if count < self.min_faces or count * self.face_bytes > self.budget:
                self._drop(key)
                self._remember_verdict(key, version)
                return "small" if count < self.min_faces else "too_big"
            faces = await load_session_faces(conn, session_id, model_id)
        if faces is None or not faces.photo_ids:
            self._drop(key)
            return "gone"
        matrix: SessionMatrix = await self._run_cpu(SessionMatrix.build, faces)
        self._matrices[key] = matrix
        self._matrices.move_to_end(key)
        while self.held_bytes > self.budget and len(self._matrices) > 1:
            self._matrices.popitem(last=False)
        SESSION_MATRIX_BYTES.set(self.held_bytes)
        log.info("session matrix loaded", session_id=session_id, faces=len(faces.photo_ids))
        return "loaded"

    @property
    def held_bytes(self) -> int:
        return sum(m.nbytes for m in self._matrices.values())

    @property
    def held_sessions(self) -> list[Key]:
        """The sessions in memory, least recently searched first."""
        return list(self._matrices)

    @property
    def idle(self) -> bool:
        """No load is queued or running."""
        return not self._queued

    def _drop(self, key: Key) -> None:
        if self._matrices.pop(key, None) is not None:
            SESSION_MATRIX_BYTES.set(self.held_bytes)

    def _remember_verdict(self, key: Key, version: datetime) -> None:
        self._verdicts[key] = version
        self._verdicts.move_to_end(key)
        while len(self._verdicts) > _MAX_VERDICTS:
            self._verdicts.popitem(last=False)

    def _forget_old_loads(self) -> None:
        now = time.monotonic()
        for key in [k for k, at in self._last_load.items() if now - at >= self.refresh_s]:
            del self._last_load[key]


def session_matrices(runtime: Runtime) -> SessionMatrices | None:
    """This process's session matrices (None when SEARCH_MATRIX_MIN_FACES is 0)."""
    matrices: SessionMatrices | None = runtime.extensions.get(_EXTENSION)
    return matrices


async def start_session_matrices(runtime: Runtime) -> None:
    search = runtime.settings.search
    if search.matrix_min_faces > 0 and search.matrix_memory_mb > 0:
        runtime.extensions[_EXTENSION] = SessionMatrices(
            search, runtime.settings.face.embedding_dimension, runtime.pool, runtime.run_cpu
        )


async def run_session_matrices(runtime: Runtime) -> None:
    matrices = session_matrices(runtime)
    if matrices is not None:
        await matrices.run()
