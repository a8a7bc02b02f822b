"""One huge session's faces in memory, as int8 rows with error bounds (quantized.py), kept
current by applying what changed (matrices.py says when).

A matrix does not answer a search by itself: it names the candidate photos, a set proven to
hold every photo the exact query returns (each face's true similarity is within its bound of
the scan's), and the exact query then runs in PostgreSQL on those photos' rows only
(session_query.py). The answer is therefore the SQL path's, similarities and order included,
at the cost of the scan plus an indexed query over a few hundred rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from libs.common.db.faces import FaceChanges, SessionFaces, SessionVersion
from services.search_api.quantized import QuantizedRows, quantize, reaching

#: Buffers grow to this many times the rows they must hold (a 1M-face session grows by a
#: quarter, not by double: the growth is copied, and untouched room costs no resident memory).
_GROWTH = 1.25


@dataclass(frozen=True)
class SessionMatrix:
    """One session's faces of one model pack, as of `version`.

    The row buffers (`face_photo` and the int8 `rows`) have room to grow and are shared by the
    matrices `updated` makes from this one: each generation reads only its first `count` rows
    and masks the faces of dropped photos with its own `alive` (a search may still be reading
    an older generation while a newer one appends past its rows)."""

    version: SessionVersion
    photos: list[str]  # append-only, shared: a face's photo by `face_photo` index
    photo_index: dict[str, int]
    face_photo: npt.NDArray[np.int32]  # per face: its photo's index in `photos`
    rows: QuantizedRows  # (capacity, dim)
    count: int
    alive: npt.NDArray[np.bool_]  # (count,): False for faces of photos changed since

    @classmethod
    def empty(cls, version: SessionVersion, dimension: int, capacity: int = 0) -> SessionMatrix:
        """A matrix of no faces with room for `capacity` (a load knows how many will come)."""
        rows = QuantizedRows(
            np.empty((capacity, dimension), np.int8),
            np.empty(capacity, np.float32),
            np.empty(capacity, np.float32),
        )
        none = np.empty(0, bool)
        return cls(version, [], {}, np.empty(capacity, np.int32), rows, 0, none)

    @classmethod
    def build(cls, faces: SessionFaces, dimension: int) -> SessionMatrix:
        return cls.empty(faces.version, dimension, len(faces.photo_ids)).updated(
            FaceChanges(faces.version.change_seq, [], faces)
        )

    def updated(self, changes: FaceChanges) -> SessionMatrix:
        """This matrix with `changes` applied: the faces of every changed photo dropped, their
        current faces appended (CPU-bound: run it off the event loop)."""
        changed = [self.photo_index[p] for p in changes.photos if p in self.photo_index]
        alive = self.alive.copy()
        if changed:
            alive &= ~np.isin(self.face_photo[: self.count], np.asarray(changed, np.int32))
        for photo in changes.faces.photo_ids:
            if photo not in self.photo_index:
                self.photo_index[photo] = len(self.photos)
                self.photos.append(photo)
        added = len(changes.faces.photo_ids)
        face_photo, rows = self._room_for(added)
        start, end = self.count, self.count + added
        if added:
            face_photo[start:end] = [self.photo_index[p] for p in changes.faces.photo_ids]
            new = quantize(_unit_rows(changes.faces))
            rows.codes[start:end], rows.scales[start:end] = new.codes, new.scales
            rows.errors[start:end] = new.errors
        return replace(
            self,
            version=changes.faces.version,
            face_photo=face_photo,
            rows=rows,
            count=end,
            alive=np.concatenate([alive, np.ones(added, bool)]),
        )

    def _room_for(self, added: int) -> tuple[npt.NDArray[np.int32], QuantizedRows]:
        """The buffers, grown (copied) when `added` rows do not fit."""
        needed = self.count + added
        if needed <= len(self.face_photo):
            return self.face_photo, self.rows
        capacity = max(int(needed * _GROWTH), needed + 1024)

        def grown(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
            bigger = np.empty((capacity, *array.shape[1:]), array.dtype)
            bigger[: self.count] = array[: self.count]
            return bigger

        rows = self.rows
        return grown(self.face_photo), QuantizedRows(
            grown(rows.codes), grown(rows.scales), grown(rows.errors)
        )

    @property
    def faces(self) -> int:
        """Faces searched (rows not dropped)."""
        return int(self.alive.sum())

    @property
    def dropped_share(self) -> float:
        return 1.0 - self.faces / self.count if self.count else 0.0

    @property
    def nbytes(self) -> int:
        """Memory held: the rows in use (room not yet written costs no resident memory)."""
        names = sum(len(p) + 56 for p in self.photos)  # a short str object is ~56 bytes
        return self.count * face_bytes(self.rows.codes.shape[1]) + self.alive.nbytes + names

    def candidates(
        self, embedding: npt.NDArray[np.float32], threshold: float, limit: int
    ) -> list[str]:
        """The photos the exact query at `threshold` and `limit` may return, a superset of
        them: each photo with a face whose similarity can reach the threshold, less those
        that `limit` photos surely better leave out."""
        found = reaching(self.rows, self.count, embedding, threshold)
        alive = self.alive[found.index]
        hits = found.index[alive]
        if len(hits) == 0:
            return []
        upper = (found.approx + found.bound)[alive]
        lower = (found.approx - found.bound)[alive]
        photo_of = self.face_photo[hits]
        photos, inverse = np.unique(photo_of, return_inverse=True)
        best_upper = np.full(len(photos), -np.inf)
        best_lower = np.full(len(photos), -np.inf)
        np.maximum.at(best_upper, inverse, upper)
        np.maximum.at(best_lower, inverse, lower)
        sure = np.sort(best_lower[best_lower >= threshold])[::-1]
        if len(sure) >= limit > 0:
            # `limit` photos score at least sure[limit - 1]: one that cannot reach it is out
            # (one that can only tie it stays, for the query's tie-break by photo id).
            photos = photos[best_upper >= sure[limit - 1]]
        return [self.photos[i] for i in photos.tolist()]


def face_bytes(dimension: int) -> int:
    """Bytes a face takes in a matrix besides its photo's name: codes, scale, error, photo."""
    return dimension + 4 + 4 + 4


def _unit_rows(faces: SessionFaces) -> npt.NDArray[np.float32]:
    """The faces' embeddings at unit length (cosine, as the SQL's <=> computes it)."""
    embeddings = np.stack([np.asarray(v.to_numpy(), np.float32) for v in faces.embeddings])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings
