"""Session query expansion (SEARCH_QUERY_EXPANSION): the selfie's surest matches in the session
lend their faces to a refined query, which a second exact pass searches.

A selfie is one picture, taken unlike the event's photos (light, angle, camera); the person's
sure matches show them as the event's cameras did. After the first pass at the request's
threshold, the matches at SEARCH_EXPANSION_THRESHOLD or above (best first, at most
SEARCH_EXPANSION_FACES) lend their face's embedding, and the refined query is the L2-normalised
mean of the selfie's embedding and theirs. The second pass, at the request's threshold, may
find photos the selfie alone missed; the answer is the union of both passes. The strict
threshold keeps lookalikes out: a face that only just passes the request's threshold lends
nothing, so the query never drifts towards another person's other photos.

Cost: one more per-session query, made only when some match lends (the lenders' embeddings come
with the first pass's rows). The refined query is made from the selfie: like the selfie's own
embedding it lives in this request's memory only, never stored or logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from libs.common.db.faces import Lending
from libs.common.settings import SearchSettings
from services.search_api.schemas import QueryExpansion

Vector = npt.NDArray[np.float32]

NOT_USED = QueryExpansion(used=False, faces=0)


class Match(Protocol):
    """A photo found by a per-session pass (a PhotoMatch)."""

    @property
    def photo_id(self) -> str: ...
    @property
    def similarity(self) -> float: ...
    @property
    def embedding(self) -> Vector | None: ...


M = TypeVar("M", bound=Match)
#: One exact per-session pass at the request's threshold and limit: query, lending -> matches.
SessionPass = Callable[[Vector, Lending | None], Awaitable[list[M]]]


def lending_for(settings: SearchSettings, threshold: float) -> Lending | None:
    """Who may lend in a search at `threshold`: None when the switch is off. The strict
    threshold is never below the search's own, so a lender is always a match."""
    if not settings.query_expansion:
        return None
    return Lending(max(settings.expansion_threshold, threshold), settings.expansion_faces)


def refined_query(selfie: Vector, lent: Sequence[Vector]) -> Vector:
    """The L2-normalised mean of the selfie's embedding and the lenders' (all unit vectors)."""
    total = np.stack([selfie, *lent]).sum(axis=0, dtype=np.float32)
    query: Vector = total / np.float32(np.linalg.norm(total))
    return query


def merged(first: Sequence[M], second: Sequence[M], limit: int) -> list[M]:
    """Both passes' photos once each, with the higher of its similarities (and that pass's
    face), best first (ties by photo id), at most `limit`."""
    best: dict[str, M] = {}
    for match in (*first, *second):
        kept = best.get(match.photo_id)
        if kept is None or match.similarity > kept.similarity:
            best[match.photo_id] = match
    return sorted(best.values(), key=lambda m: (-m.similarity, m.photo_id))[:limit]


async def expanded_search(
    search: SessionPass[M], selfie: Vector, lending: Lending | None, limit: int
) -> tuple[list[M], QueryExpansion]:
    """The first pass, and the second with the refined query when some match lends."""
    first = await search(selfie, lending)
    lent = [m.embedding for m in first if m.embedding is not None]
    if not lent:
        return first, NOT_USED
    second = await search(refined_query(selfie, lent), None)
    return merged(first, second, limit), QueryExpansion(used=True, faces=len(lent))
