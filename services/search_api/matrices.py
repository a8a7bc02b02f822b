"""Exact in-memory search for huge sessions, kept current while photos pour in.

An exact SQL scan costs about a microsecond per face: PostgreSQL reads the whole ~2 kB row of
every face of the session (measured on 2 cores: a 100k-face session 120-400 ms), while a scan of
the same faces in memory takes a few milliseconds. So each search process keeps its huge
sessions (SEARCH_MATRIX_MIN_FACES faces or more) in memory as int8 rows (matrix.py,
quantized.py: ~0.5 kB a face), within SEARCH_MATRIX_MEMORY_MB, dropping the least recently
searched first; the scan names candidate photos and the exact query runs on their rows only.

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
reload. They can only add a candidate: the exact query reads the session's own rows.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from libs.common.db.faces import (
    FaceChanges,
    SessionFaces,
    SessionVersion,
    count_session_faces,
    load_face_changes,
    load_session_faces,
)
from libs.common.db.locks import Connection
from libs.common.log import get_logger
from libs.common.metrics import (
    SESSION_MATRIX_BYTES,
    SESSION_MATRIX_LOADS,
    SESSION_MATRIX_UPDATES,
)
from libs.common.runtime import Runtime
from libs.common.settings import SearchSettings
from services.search_api.matrix import SessionMatrix, face_bytes

log = get_logger(__name__)

Key = tuple[str, str]  # (session_id, model_id)
#: Verdicts "too small" / "too big" remembered per session version, at most this many.
_MAX_VERDICTS = 10_000
_EXTENSION = "search_api.session_matrices"
#: Changes applied in place at most this share of a matrix's rows; more: a whole load.
_MAX_CHANGE_SHARE = 0.2
#: Dropped rows past this share of a matrix's rows queue a load, which compacts them away.
_COMPACT_SHARE = 0.25
#: A load makes room for this many times the faces it reads.
_ROOM = 1.25


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
        self.dimension = dimension
        self.face_bytes = face_bytes(dimension)
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
            if len(changes.faces.photo_ids) > _MAX_CHANGE_SHARE * max(matrix.count, 1):
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
            # Room for a quarter more: photos still coming are appended without a copy (room
            # not yet written costs no resident memory).
            room = int(count * _ROOM) + 1024
            matrix = await load_matrix(
                conn, session_id, model_id, self.dimension, self._run_cpu, room
            )
        if matrix is None or not matrix.count:
            self._drop(key)
            return "gone"
        self._matrices[key] = matrix
        self._matrices.move_to_end(key)
        while self.held_bytes > self.budget and len(self._matrices) > 1:
            self._matrices.popitem(last=False)
        SESSION_MATRIX_BYTES.set(self.held_bytes)
        log.info("session matrix loaded", session_id=session_id, faces=matrix.count)
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


async def load_matrix(
    conn: Connection,
    session_id: str,
    model_id: str,
    dimension: int,
    run_cpu: Callable[..., Awaitable[Any]],
    capacity: int = 0,
    chunk_rows: int = 4096,
) -> SessionMatrix | None:
    """The session's matrix, read in one snapshot and quantised chunk by chunk (so a load never
    holds the session in float32). None: no such session."""
    matrix: SessionMatrix | None = None

    async def add(chunk: SessionFaces) -> None:
        nonlocal matrix
        held = matrix or SessionMatrix.empty(chunk.version, dimension, capacity)
        matrix = await run_cpu(held.updated, FaceChanges(chunk.version.change_seq, [], chunk))

    version = await load_session_faces(conn, session_id, model_id, add, chunk_rows=chunk_rows)
    if version is None:
        return None
    return matrix or SessionMatrix.empty(version, dimension)


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
