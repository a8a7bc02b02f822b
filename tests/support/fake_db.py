"""An in-memory stand-in for libs/common/db in the services' unit tests: the photo lifecycle
(photos.py), the face queries (faces.py) and the subscriptions' sequence, keeping the contracts
the services rely on (what each call returns or raises); tests/integration checks the same
paths on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from pgvector import Vector

from libs.common.db import faces as faces_db
from libs.common.db import photos
from libs.common.db import subscriptions as subscriptions_db
from libs.common.db.faces import Lending, PhotoMatch, PhotoObjects, SessionFaces, SessionVersion
from libs.common.db.photos import ErasedPhoto, PhotoRecord, WriteResult, Written
from libs.common.db.renditions import PhotoRenditions
from libs.common.events import PhotoUploaded
from libs.common.face.results import Face, PhotoFaces


@dataclass
class FakePhotoDb:
    """The photo rows, faces and tombstones the lifecycle functions would write."""

    rows: dict[str, PhotoRecord] = field(default_factory=dict)
    faces: dict[str, PhotoFaces] = field(default_factory=dict)
    erased: dict[str, str] = field(default_factory=dict)  # photo id -> session id
    sessions: dict[str, datetime] = field(default_factory=dict)  # id -> changed_at
    owners: dict[str, str | None] = field(default_factory=dict)  # session id -> owner key id
    #: What record_indexed/record_failed answer instead of writing (e.g. ERASED, CONFLICT).
    gate: WriteResult | None = None
    #: Raised by every call, e.g. OSError: the database is down.
    down: BaseException | None = None
    #: What search_session answers as it is; empty: it searches the session's faces.
    matches: list[PhotoMatch] = field(default_factory=list)
    #: Sessions past their retention (what expired_sessions answers until they are erased).
    expired: set[str] = field(default_factory=set)

    def _check(self) -> None:
        if self.down is not None:
            raise self.down

    def _touch(self, session_id: str) -> None:
        self.sessions[session_id] = datetime.now(UTC)

    @asynccontextmanager
    async def photo_transaction(
        self, pool: Any, photo_id: str, session_id: str | None = None
    ) -> AsyncIterator[object]:
        self._check()
        yield object()

    async def get_photo(
        self, conn: Any, photo_id: str, *, for_update: bool = False
    ) -> PhotoRecord | None:
        self._check()
        return self.rows.get(photo_id)

    async def record_queued(
        self,
        conn: Any,
        *,
        photo_id: str,
        session_id: str,
        object_key: str,
        content_sha256: str,
        owner_key_id: str | None = None,
    ) -> datetime:
        self._check()
        now = datetime.now(UTC)
        self.sessions.setdefault(session_id, now)
        self.owners.setdefault(session_id, owner_key_id)
        self.rows[photo_id] = PhotoRecord(
            photo_id, session_id, "queued", object_key, content_sha256, 0, [], None, None, None, now
        )
        return now

    def _current_keys(self, photo_id: str) -> tuple[str, ...]:
        row = self.rows.get(photo_id)
        keys = (row.thumbnail_key, row.preview_key) if row is not None else ()
        return tuple(k for k in keys if k is not None)

    async def record_indexed(
        self,
        pool: Any,
        event: PhotoUploaded,
        result: PhotoFaces,
        model_id: str,
        renditions: PhotoRenditions | None = None,
    ) -> Written:
        self._check()
        ours = renditions.keys() if renditions is not None else ()
        current = self._current_keys(event.photo_id)
        if self.gate is not None:
            return Written(self.gate, tuple(k for k in ours if k not in current))
        self._touch(event.session_id)
        self.rows[event.photo_id] = PhotoRecord(
            event.photo_id, event.session_id, "indexed", event.object.key,
            event.content_sha256, len(result.faces), [], model_id, None, datetime.now(UTC),
            datetime.now(UTC), *(ours or (None, None)),
        )  # fmt: skip
        self.faces[event.photo_id] = result
        return Written(WriteResult.WRITTEN, tuple(k for k in current if k not in ours))

    async def record_failed(
        self,
        pool: Any,
        event: PhotoUploaded,
        error: str,
        renditions: PhotoRenditions | None = None,
    ) -> Written:
        self._check()
        ours = renditions.keys() if renditions is not None else ()
        current = self._current_keys(event.photo_id)
        if self.gate is not None:
            return Written(self.gate, tuple(k for k in ours if k not in current))
        self._touch(event.session_id)
        self.faces.pop(event.photo_id, None)
        self.rows[event.photo_id] = PhotoRecord(
            event.photo_id, event.session_id, "failed", event.object.key, None, 0, [], None,
            error, None, datetime.now(UTC),
        )  # fmt: skip
        return Written(WriteResult.WRITTEN, current + ours)

    async def erase_photo(self, pool: Any, photo_id: str) -> ErasedPhoto | None:
        self._check()
        record = self.rows.pop(photo_id, None)
        if record is None:
            session = self.erased.get(photo_id)
            return ErasedPhoto(session, had_row=False) if session is not None else None
        self.faces.pop(photo_id, None)
        self.erased[photo_id] = record.session_id
        self._touch(record.session_id)
        return ErasedPhoto(record.session_id, had_row=True)

    async def erase_session(self, pool: Any, session_id: str) -> int:
        self._check()
        gone = [p for p, r in self.rows.items() if r.session_id == session_id]
        for photo_id in gone:
            del self.rows[photo_id]
            self.faces.pop(photo_id, None)
        self.sessions.pop(session_id, None)
        self.expired.discard(session_id)
        return len(gone)

    async def expired_sessions(self, conn: Any, retention_days: int, limit: int = 100) -> list[str]:
        self._check()
        return sorted(self.expired)[:limit]

    async def session_version(self, conn: Any, session_id: str) -> SessionVersion | None:
        self._check()
        changed = self.sessions.get(session_id)
        return SessionVersion(changed, 0, changed) if changed is not None else None

    def add_photo(
        self,
        photo_id: str,
        session_id: str,
        embeddings: Sequence[np.ndarray[Any, Any]],
        model_id: str = "fake-pack@1",
    ) -> None:
        """An indexed photo with faces of these embeddings (face i's box starts at x = i), as
        record_indexed would leave it."""
        self.sessions.setdefault(session_id, datetime.now(UTC))
        now = datetime.now(UTC)
        self.rows[photo_id] = PhotoRecord(
            photo_id, session_id, "indexed", f"sessions/{session_id}/photos/{photo_id}", None,
            len(embeddings), [], model_id, None, now, now,
        )  # fmt: skip
        faces = tuple(
            Face((float(i), 0.0, i + 10.0, 10.0), ((0.0, 0.0),) * 5, 0.9, e)
            for i, e in enumerate(embeddings)
        )
        self.faces[photo_id] = PhotoFaces(faces, (), 100, 100, {})

    def _session_faces(self, session_id: str, model_id: str) -> list[tuple[PhotoRecord, Face]]:
        return [
            (row, face)
            for photo_id, row in sorted(self.rows.items())
            if row.session_id == session_id and row.model_id == model_id
            for face in (self.faces[photo_id].faces if photo_id in self.faces else ())
        ]

    def session_faces(self, session_id: str, model_id: str = "fake-pack@1") -> SessionFaces:
        """What load_session_faces reads: for a SessionMatrix of the session."""
        faces = self._session_faces(session_id, model_id)
        changed = self.sessions[session_id]
        return SessionFaces(
            SessionVersion(changed, 0, changed),
            [row.photo_id for row, _ in faces],
            [Vector(face.embedding) for _, face in faces],
        )

    async def search_session(self, conn: Any, **query: Any) -> list[PhotoMatch]:
        """`matches` if set; else the SQL's answer by brute force over the session's faces."""
        self._check()
        self.last_query = query
        self.queries.append(query)
        if self.matches:
            return list(self.matches)
        best: dict[str, tuple[float, PhotoRecord, Face]] = {}
        candidates = query.get("photo_ids")
        for row, face in self._session_faces(query["session_id"], query["model_id"]):
            if candidates is not None and row.photo_id not in candidates:
                continue
            similarity = float(face.embedding @ query["embedding"])
            kept = best.get(row.photo_id)
            if similarity >= query["threshold"] and (kept is None or similarity > kept[0]):
                best[row.photo_id] = (similarity, row, face)
        ranked = sorted(best.values(), key=lambda b: (-b[0], b[1].photo_id))[: query["limit"]]
        lending: Lending | None = query.get("lending")
        return [
            PhotoMatch(
                row.photo_id,
                similarity,
                list(face.bbox),
                self._objects(row),
                face.embedding
                if lending and rank < lending.faces and similarity >= lending.threshold
                else None,
            )
            for rank, (similarity, row, face) in enumerate(ranked)
        ]

    @staticmethod
    def _objects(row: PhotoRecord) -> PhotoObjects:
        return PhotoObjects(
            row.object_key, thumbnail_key=row.thumbnail_key, preview_key=row.preview_key
        )

    async def subscriptions_seq(self, pool: Any, session_id: str) -> int | None:
        """No session here ever had a notify-me subscription (test_matching.py: the matching)."""
        self._check()
        return 0 if session_id in self.sessions else None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Put these methods in place of libs/common/db's functions for this test."""
        for name in (
            "photo_transaction", "get_photo", "record_queued", "record_indexed",
            "record_failed", "erase_photo", "erase_session", "expired_sessions",
        ):  # fmt: skip
            monkeypatch.setattr(photos, name, getattr(self, name))
        monkeypatch.setattr(faces_db, "session_version", self.session_version)
        monkeypatch.setattr(faces_db, "search_session", self.search_session)
        monkeypatch.setattr(subscriptions_db, "subscriptions_seq", self.subscriptions_seq)
        self.last_query: dict[str, Any] = {}
        self.queries: list[dict[str, Any]] = []
