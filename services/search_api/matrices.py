"""Exact in-memory search for huge sessions, kept current while photos pour in.

An exact SQL scan costs about a microsecond per face: PostgreSQL reads the whole ~2 kB row of
every face of the session (measured on 2 cores: a 100k-face session 120-400 ms), while a
matrix-vector product over the same vectors in memory takes about 7 ms. So each search process
keeps the embeddings of its huge sessions (SEARCH_MATRIX_MIN_FACES faces or more) in memory,
within SEARCH_MATRIX_MEMORY_MB, dropping the least recently searched first.

Exact and never stale. Every change of a session's faces takes the next change number
(libs/common/db/photos.py touch_session), in commit order within the session. A matrix holds
the session's faces as of one number; a search that finds the session further on first applies
what changed in between (`SessionMatrix.updated`: the faces of every photo changed since are
dropped and its current faces added), read in one snapshot with the session's number
(`load_face_changes`), so it answers exactly as of a version at least as new as the one the
search read, erasures included, without reloading the session. A session begun again after an
erasure (another `created_at`) or with too many changes pending is searched by SQL (the same
answer, slower) while a whole load is queued; loads run one at a time in the background, at
most once per SEARCH_MATRIX_REFRESH_S for a session. Faces of dropped photos stay in the
buffers, masked, until a load compacts them (queued once they are a quarter of the rows).

One case the change numbers miss: a photo id erased here, uploaded into another session and
erased there too, keeps only its last tombstone, so this matrix keeps its faces until a
reload. The answer never shows it (results keep only photos in the session, session_query.py),
but such a face could still lend to query expansion.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from libs.common.db.faces import (
    FaceChanges,
    Lending,
    SessionFaces,
    SessionVersion,
    count_session_faces,
    load_face_changes,
    load_session_faces,
)
from libs.common.log import get_logger
from libs.common.metrics import (
    SESSION_MATRIX_BYTES,
    SESSION_MATRIX_LOADS,
    SESSION_MATRIX_UPDATES,
)
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


#: Changes applied in place at most this share of a matrix's rows; more: a whole load.
_MAX_CHANGE_SHARE = 0.2
#: Dropped rows past this share of a matrix's rows queue a load, which compacts them away.
_COMPACT_SHARE = 0.25


@dataclass(frozen=True)
class SessionMatrix:
    """One session's faces of one model pack, as of `version`, ready for a matrix product.

    The row buffers (`embeddings`, `bboxes`, `face_photo`) have room to grow and are shared by
    the matrices `updated` makes from this one: each generation reads only its first `rows`
    rows and masks the faces of dropped photos with its own `alive` (a search may still be
    reading an older generation while a newer one appends past its rows)."""

    version: SessionVersion
    photos: list[str]  # append-only, shared: a face's photo by `face_photo` index
    photo_index: dict[str, int]
    face_photo: npt.NDArray[np.int32]  # per face: its photo's index in `photos`
    bboxes: npt.NDArray[np.float32]  # (capacity, 4)
    embeddings: npt.NDArray[np.float32]  # (capacity, dim), rows of unit length
    rows: int
    alive: npt.NDArray[np.bool_]  # (rows,): False for faces of photos changed since

    @classmethod
    def build(cls, faces: SessionFaces) -> SessionMatrix:
        photos = list(dict.fromkeys(faces.photo_ids))
        index = {photo: i for i, photo in enumerate(photos)}
        face_photo, bboxes, embeddings = _rows(faces, index)
        rows = len(face_photo)
        return cls(
            faces.version, photos, index, face_photo, bboxes, embeddings, rows,
            np.ones(rows, bool),
        )  # fmt: skip

    def updated(self, changes: FaceChanges) -> SessionMatrix:
        """This matrix with `changes` applied: the faces of every changed photo dropped, their
        current faces appended (CPU-bound: run it off the event loop)."""
        changed = [self.photo_index[p] for p in changes.photos if p in self.photo_index]
        alive = self.alive.copy()
        if changed:
            alive &= ~np.isin(self.face_photo[: self.rows], np.asarray(changed, np.int32))
        for photo in changes.faces.photo_ids:
            if photo not in self.photo_index:
                self.photo_index[photo] = len(self.photos)
                self.photos.append(photo)
        face_photo, bboxes, embeddings = _rows(changes.faces, self.photo_index)
        added = len(face_photo)
        buffers = self._room_for(added)
        start, end = self.rows, self.rows + added
        if added:
            buffers[0][start:end], buffers[1][start:end], buffers[2][start:end] = (
                face_photo, bboxes, embeddings,
            )  # fmt: skip
        return replace(
            self,
            version=changes.faces.version,
            face_photo=buffers[0],
            bboxes=buffers[1],
            embeddings=buffers[2],
            rows=end,
            alive=np.concatenate([alive, np.ones(added, bool)]),
        )

    def _room_for(
        self, added: int
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The buffers, grown (copied to twice the rows needed) when `added` rows do not fit."""
        needed = self.rows + added
        if needed <= len(self.face_photo):
            return self.face_photo, self.bboxes, self.embeddings
        capacity = max(needed * 2, 1024)

        def grown(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
            bigger = np.empty((capacity, *array.shape[1:]), array.dtype)
            bigger[: self.rows] = array[: self.rows]
            return bigger

        return grown(self.face_photo), grown(self.bboxes), grown(self.embeddings)

    @property
    def faces(self) -> int:
        """Faces searched (rows not dropped)."""
        return int(self.alive.sum())

    @property
    def dropped_share(self) -> float:
        return 1.0 - self.faces / self.rows if self.rows else 0.0

    @property
    def nbytes(self) -> int:
        names = sum(len(p) + 56 for p in self.photos)  # a short str object is ~56 bytes
        buffers = self.embeddings.nbytes + self.bboxes.nbytes + self.face_photo.nbytes
        return buffers + self.alive.nbytes + names

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
        similarities = self.embeddings[: self.rows] @ query
        hits = np.flatnonzero((similarities >= threshold) & self.alive)
        face_photo = self.face_photo[: self.rows]
        # Each photo's best face: sort the hits by photo, best first, keep each photo's first.
        hits = hits[np.lexsort((-similarities[hits], face_photo[hits]))]
        photo_of = face_photo[hits]
        first = np.ones(len(hits), bool)
        first[1:] = photo_of[1:] != photo_of[:-1]
        best = hits[first].tolist()
        best.sort(key=lambda i: (-float(similarities[i]), self.photos[face_photo[i]]))
        return [
            MatrixMatch(
                photo_id=self.photos[face_photo[i]],
                similarity=float(similarities[i]),
                bbox=self.bboxes[i].tolist(),
                embedding=self.embeddings[i].copy()
                if lending and rank < lending.faces and similarities[i] >= lending.threshold
                else None,
            )
            for rank, i in enumerate(best[:limit])
        ]


def _rows(
    faces: SessionFaces, index: dict[str, int]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Faces as matrix rows: photo indexes, boxes, unit-length embeddings."""
    count = len(faces.photo_ids)
    face_photo = np.fromiter((index[p] for p in faces.photo_ids), np.int32, count=count)
    bboxes = np.asarray(faces.bboxes, np.float32).reshape(-1, 4)
    if count == 0:
        return face_photo, bboxes, np.empty((0, 0), np.float32)
    embeddings = np.stack([v.to_numpy() for v in faces.embeddings]).astype(np.float32, copy=False)
    # cosine, as the SQL's <=> computes it
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return face_photo, bboxes, embeddings


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
        self._verdicts: OrderedDict[Key, SessionVersion] = OrderedDict()
        self._queue: asyncio.Queue[tuple[Key, SessionVersion]] = asyncio.Queue()
        # One change application at a time per session: they append to shared buffers.
        self._updating: dict[Key, asyncio.Lock] = {}
        self._queued: set[Key] = set()
        self._last_load: dict[Key, float] = {}

    async def current(
        self, session_id: str, model_id: str, version: SessionVersion
    ) -> SessionMatrix | None:
        """The session's matrix as of `version` or newer, with the changes since the one it
        held applied first; None (and a whole load queued when the session may be worth one)
        when there is none, the session was begun again, or too much changed."""
        key = (session_id, model_id)
        matrix = self._matrices.get(key)
        if matrix is not None and matrix.version.created_at == version.created_at:
            if matrix.version.change_seq < version.change_seq:
                matrix = await self._caught_up(key, matrix)
            if matrix is not None and matrix.version.change_seq >= version.change_seq:
                self._matrices.move_to_end(key)
                if matrix.dropped_share > _COMPACT_SHARE:
                    self._queue_load(key, version)
                return matrix
        if self._verdicts.get(key) == version:
            return None
        self._queue_load(key, version)
        return None

    async def _caught_up(self, key: Key, held: SessionMatrix) -> SessionMatrix | None:
        """`held` with the session's changes since applied (by one search at a time; the
        others wait and find it done). None when they are too many or the session is gone."""
        async with self._updating.setdefault(key, asyncio.Lock()):
            matrix = self._matrices.get(key)
            if matrix is None or matrix.version.created_at != held.version.created_at:
                return None
            async with self._pool().acquire() as conn:
                changes = await load_face_changes(conn, key[0], key[1], matrix.version.change_seq)
            if changes is None or changes.faces.version.created_at != matrix.version.created_at:
                self._drop(key)
                return None
            if len(changes.faces.photo_ids) > _MAX_CHANGE_SHARE * max(matrix.rows, 1):
                return None  # cheaper to load it whole (queued by the caller)
            updated: SessionMatrix = await self._run_cpu(matrix.updated, changes)
            self._matrices[key] = updated
            SESSION_MATRIX_BYTES.set(self.held_bytes)
            SESSION_MATRIX_UPDATES.inc()
            return updated

    def _queue_load(self, key: Key, version: SessionVersion) -> None:
        if key in self._queued:
            return
        last = self._last_load.get(key)
        if last is not None and time.monotonic() - last < self.refresh_s:
            return
        self._queued.add(key)
        self._queue.put_nowait((key, version))

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

    async def _load(self, key: Key, version: SessionVersion) -> str:
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

    def _remember_verdict(self, key: Key, version: SessionVersion) -> None:
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
