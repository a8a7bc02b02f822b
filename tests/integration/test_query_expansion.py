"""Session query expansion over HTTP on the real stack, on the SQL path and on the in-memory
matrix path: a sure match lends its face, the refined query finds a photo the selfie alone
missed, and a lookalike (a match, not a sure one) lends nothing, so their other photo stays out.

The session's faces are synthetic vectors written straight into PostgreSQL, built around the
selfie's real embedding (computed here as the server computes it), so every similarity is
known in advance; the selfie goes through the server's real engine.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from libs.common.db.pool import create_pool
from libs.common.face import FaceEngine
from libs.common.face.selfie import selfie_from_bytes
from libs.common.settings import Settings
from tests.support.data import TOM_HANKS, jpeg_bytes
from tests.support.processes import ServerProcess, facepass_serve
from tests.support.vectors import FacesAround

pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

SELFIE = jpeg_bytes(TOM_HANKS, scale=0.8)
THRESHOLD = 0.4  # the request's; the strict one is SEARCH_EXPANSION_THRESHOLD's default, 0.6
ON = {"SEARCH_QUERY_EXPANSION": "True", "SEARCH_CACHE_TTL_S": "0"}  # the default, said here
OFF = {"SEARCH_QUERY_EXPANSION": "False", "SEARCH_CACHE_TTL_S": "0"}


def _session_faces(embedding: np.ndarray) -> dict[str, np.ndarray]:
    """Photo (one face each) -> its face: cosines to the selfie as in the unit tests."""
    around = FacesAround(embedding)
    return {
        "sure": around.face(0.8, (around.u, 0.6)),  # lends (>= 0.6)
        "missed": around.face(0.35, (around.u, 0.7)),  # < 0.4 for the selfie; 0.55 refined
        "L": around.face(0.45, (around.v, 0.85)),  # a lookalike: a match, not a sure one
        "L2": around.face(0.1, (around.v, 0.99)),  # the lookalike again: 0.89 to L's face
        "stranger": around.face(0.05),
    }


async def _write_session(
    settings: Settings, session: str, model_id: str, faces: dict[str, np.ndarray]
) -> None:
    pool = await create_pool(settings.postgres)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO sessions (session_id) VALUES ($1)", session)
            for name, vector in faces.items():
                photo = f"{session}-{name}"
                await conn.execute(
                    "INSERT INTO photos (photo_id, session_id, status, object_key) "
                    "VALUES ($1, $2, 'indexed', $3)",
                    photo, session, f"sessions/{session}/photos/{photo}",
                )  # fmt: skip
                await conn.execute(
                    "INSERT INTO face_embeddings (photo_id, face_index, session_id, bbox, "
                    "det_score, embedding, model_id) VALUES ($1, 0, $2, $3, 0.9, $4, $5)",
                    photo, session, [1.0, 2.0, 30.0, 40.0], vector, model_id,
                )  # fmt: skip
    finally:
        await pool.close()


async def _erase_session(settings: Settings, session: str) -> None:
    pool = await create_pool(settings.postgres)
    try:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM sessions WHERE session_id = $1", session)
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def session(stack: Settings) -> Iterator[str]:
    engine = FaceEngine.from_settings(stack.face)
    engine.load()
    embedding = selfie_from_bytes(engine, SELFIE, stack.face).result.face.embedding
    name = f"expand-{uuid.uuid4().hex[:10]}"
    asyncio.run(_write_session(stack, name, engine.pack.id, _session_faces(embedding)))
    yield name
    asyncio.run(_erase_session(stack, name))


def _search(server: ServerProcess, session: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/api/v2/search",
        data={"session_id": session, "threshold": str(THRESHOLD)},
        files={"file": ("selfie.jpg", SELFIE, "image/jpeg")},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body["found"] = [r["photo_id"].removeprefix(f"{session}-") for r in body["results"]]
    return body


def _metric(server: ServerProcess, series: str) -> float:
    text = httpx.get(f"{server.base_url}/api/v2/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(series)
    )


def _queries(server: ServerProcess) -> tuple[float, float]:
    """Per-session passes so far: (sql, matrix)."""
    series = 'facepass_search_session_queries_total{{path="{}"}}'
    return _metric(server, series.format("sql")), _metric(server, series.format("matrix"))


def test_with_the_switch_off_the_selfie_alone_answers(
    stack: Settings, session: str, tmp_path: Path
) -> None:
    with facepass_serve(stack, tmp_path, "search-api", **OFF) as plain:
        body = _search(plain, session)
        assert _queries(plain) == (1, 0)
    assert body["found"] == ["sure", "L"]
    assert body["query_expansion"] == {"used": False, "faces": 0}


def test_the_sql_path_expands_with_the_sure_match_only(server: ServerProcess, session: str) -> None:
    """The default server: expansion ships on (docs/faces.md, "Accuracy switches")."""
    before = _queries(server)
    body = _search(server, session)
    after = _queries(server)
    # The first pass and the refined one, in SQL.
    assert (after[0] - before[0], after[1] - before[1]) == (2, 0)
    assert body["query_expansion"] == {"used": True, "faces": 1}
    # "missed" came through the refined query; L is the selfie's own match; L2 stays out.
    assert body["found"] == ["sure", "missed", "L"]
    similarities = [r["similarity"] for r in body["results"]]
    assert similarities == sorted(similarities, reverse=True)
    assert similarities[1] == pytest.approx(0.55, abs=0.02) and similarities[2] == pytest.approx(
        0.45, abs=0.01
    )


def test_the_matrix_path_expands_the_same_way(
    stack: Settings, session: str, tmp_path: Path
) -> None:
    env = {**ON, "SEARCH_MATRIX_MIN_FACES": "1", "SEARCH_MATRIX_REFRESH_S": "0.1"}
    with facepass_serve(stack, tmp_path, "search-api", **env) as expanding:
        by_sql = _search(expanding, session)  # no matrix yet: SQL answers, a load is queued
        deadline = time.monotonic() + 30
        loaded = 'facepass_search_session_matrix_loads_total{outcome="loaded"}'
        while _metric(expanding, loaded) < 1:
            assert time.monotonic() < deadline, "the session matrix was never loaded"
            time.sleep(0.1)
        in_memory = _search(expanding, session)
        assert _queries(expanding) == (2, 2)
    assert in_memory["query_expansion"] == by_sql["query_expansion"] == {"used": True, "faces": 1}
    assert in_memory["found"] == by_sql["found"] == ["sure", "missed", "L"]
    for a, b in zip(in_memory["results"], by_sql["results"], strict=True):
        assert a["similarity"] == pytest.approx(b["similarity"], abs=2e-4)
        assert a["face"] == b["face"]
