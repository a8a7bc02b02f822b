"""Backups on the real embedded PostgreSQL: `facepass backup` / `facepass restore` (the one
implementation) and the deploy/scripts wrappers that run them dump, survive a wipe, and restore
rows, vectors and search results, also into a fresh database made as docs/operations.md says;
the operator SQL scripts run with psql on a database that holds data.

Each test works in its own database (and Kafka topics), so wiping it never disturbs the
session's other tests.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from facepass.backup import pg_tool
from facepass.bootstrap import prepare_dependencies
from libs.common.settings import PostgresSettings, Settings
from tests.support.api import index_and_wait
from tests.support.data import T1, TOM_HANKS, jpeg_bytes
from tests.support.processes import API_KEY, FACEPASS, ServerProcess, facepass_serve, stack_env
from tests.support.stack import superuser

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "deploy" / "scripts"
KEY = {"X-API-Key": API_KEY}
T1_LEFT = (0, 0, 1280 // 3, 886)  # the left-most attendee of t1.jpg
V2_TABLES = {"sessions", "photos", "face_embeddings", "erased_sessions", "erased_photos"}


@pytest.fixture
def own_db(stack: Settings) -> Iterator[Settings]:
    """The stack's settings with a fresh database (pgvector, owned by the FacePass role) and
    topics of its own; the database is dropped afterwards."""
    tag = uuid.uuid4().hex[:8]
    name = f"bk_{tag}"
    with superuser(stack) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{stack.postgres.user}"')
    with superuser(stack, name) as conn:
        conn.execute("CREATE EXTENSION vector")
    kafka = stack.kafka.model_copy(
        update={
            "topic_uploaded": f"facepass.bk-{tag}.uploaded.v1",
            "topic_indexed": f"facepass.bk-{tag}.indexed.v1",
            "topic_dlq": f"facepass.bk-{tag}.dlq.v1",
            "consumer_group": f"facepass-bk-{tag}",
        }
    )
    yield stack.model_copy(
        update={"postgres": stack.postgres.model_copy(update={"db": name}), "kafka": kafka}
    )
    with superuser(stack) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _overrides(settings: Settings) -> dict[str, str]:
    """The variables that point a facepass process at this test's database and topics."""
    kafka = settings.kafka
    return {
        "KAFKA_TOPIC_UPLOADED": kafka.topic_uploaded,
        "KAFKA_TOPIC_INDEXED": kafka.topic_indexed,
        "KAFKA_TOPIC_DLQ": kafka.topic_dlq,
        "KAFKA_CONSUMER_GROUP": kafka.consumer_group,
        # No result cache: a search after the restore must read the restored rows.
        "SEARCH_CACHE_TTL_S": "0",
        "SEARCH_RATE_LIMIT_PER_MINUTE": "0",
    }


def _env(settings: Settings) -> dict[str, str]:
    return stack_env(settings, **_overrides(settings))


def _facepass(settings: Settings, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FACEPASS, *args], env=_env(settings), cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _script(
    settings: Settings, name: str, *args: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    pg = settings.postgres
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "PG"))}
    env.update(
        POSTGRES_HOST=pg.host, POSTGRES_PORT=str(pg.port), POSTGRES_USER=pg.user,
        POSTGRES_PASSWORD=pg.password.get_secret_value(), POSTGRES_DB=pg.db,
        PG_BIN_DIR=str(Path(pg_tool("pg_dump")).parent),
    )  # fmt: skip
    return subprocess.run(
        ["bash", str(SCRIPTS / name), *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _fingerprint(pg: PostgresSettings) -> dict[str, Any]:
    """Row counts of every v2 table and a digest of every vector, in a stable order."""
    with psycopg.connect(pg.dsn()) as conn:
        present = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
        if "face_embeddings" not in present:
            return {"tables": sorted(present & V2_TABLES)}
        counts = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in sorted(V2_TABLES)
        }
        digest, vectors = conn.execute(
            "SELECT md5(string_agg(embedding::text || bbox::text, '|' "
            "ORDER BY photo_id, face_index)), count(embedding) FROM face_embeddings"
        ).fetchone()
    return {"tables": sorted(present & V2_TABLES), "counts": counts, "vectors": vectors,
            "digest": digest}  # fmt: skip


def _search(server: ServerProcess, session: str, selfie: bytes) -> list[tuple[str, float]]:
    response = httpx.post(
        f"{server.base_url}/api/v2/search",
        data={"session_id": session},
        files={"file": ("selfie.jpg", selfie, "image/jpeg")},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return [(r["photo_id"], round(r["similarity"], 4)) for r in response.json()["results"]]


def test_backup_wipe_restore_gives_back_rows_vectors_and_search_results(
    own_db: Settings, tmp_path: Path
) -> None:
    prepare_dependencies(own_db)
    session = f"bk-{uuid.uuid4().hex[:8]}"
    photos = {
        f"{session}-group": T1.read_bytes(),
        f"{session}-group-small": jpeg_bytes(T1, scale=0.6),
        f"{session}-tom": jpeg_bytes(TOM_HANKS),
    }
    selfies = {"left attendee": jpeg_bytes(T1, crop=T1_LEFT), "tom": jpeg_bytes(TOM_HANKS)}
    with facepass_serve(own_db, tmp_path, **_overrides(own_db)) as server:
        index_and_wait(server, session, photos, timeout_s=180)
        before = {name: _search(server, session, selfie) for name, selfie in selfies.items()}
    assert {p for p, _ in before["left attendee"]} == {
        f"{session}-group",
        f"{session}-group-small",
    }
    assert [p for p, _ in before["tom"]] == [f"{session}-tom"]
    original = _fingerprint(own_db.postgres)
    assert original["counts"]["photos"] == 3
    # 6 faces in t1.jpg, most of them again in the smaller copy, 1 in Tom Hanks's photo
    assert original["vectors"] == original["counts"]["face_embeddings"] > 7

    made = _facepass(own_db, "backup", "--dir", "backups", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    archives = list((tmp_path / "backups").glob("facepass_*.dump"))
    assert len(archives) == 1 and archives[0].name.startswith(f"facepass_{own_db.postgres.db}_")
    assert stat.S_IMODE(archives[0].stat().st_mode) == 0o600  # biometric data
    assert "face_embeddings " + str(original["counts"]["face_embeddings"]) in made.stdout

    wiped = _facepass(own_db, "db", "rollback", "--all", cwd=tmp_path)
    assert wiped.returncode == 0, wiped.stderr
    assert _fingerprint(own_db.postgres) == {"tables": []}

    restored = _facepass(own_db, "restore", str(archives[0]), "--yes", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert _fingerprint(own_db.postgres) == original
    status = _facepass(own_db, "db", "status", cwd=tmp_path)
    assert "pending: -" in status.stdout  # the migration state came back with the data

    with facepass_serve(own_db, tmp_path, **_overrides(own_db)) as server:
        after = {name: _search(server, session, selfie) for name, selfie in selfies.items()}
        with server.client() as client:
            group = client.get(f"/api/v2/photos/{session}-group", headers=KEY).json()
    assert after == before
    assert group["status"] == "indexed" and group["faces_indexed"] == 6


def _seed_faces(pg: PostgresSettings, photos: int = 4, faces: int = 3) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO sessions (session_id) VALUES ('s-seed')")
        for p in range(photos):
            conn.execute(
                "INSERT INTO photos (photo_id, session_id, object_key, status, faces_count) "
                "VALUES (%s, 's-seed', %s, 'indexed', %s)",
                (f"p{p}", f"s-seed/p{p}", faces),
            )
            for f in range(faces):
                vector = "[" + ",".join(str(((p * 7 + f * 3 + i) % 11) / 11) for i in range(512))
                conn.execute(
                    "INSERT INTO face_embeddings (photo_id, face_index, session_id, bbox, "
                    "det_score, embedding, model_id) VALUES (%s, %s, 's-seed', "
                    "'{1,2,3,4}', 0.9, %s, 'seed-model')",
                    (f"p{p}", f, vector + "]"),
                )
        conn.execute("INSERT INTO erased_sessions (session_id) VALUES ('s-gone')")


def _psql(pg: PostgresSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [pg_tool("psql"), "-X", "-v", "ON_ERROR_STOP=1", "--host", pg.host, "--port",
         str(pg.port), "--username", pg.user, "--dbname", pg.db, *args],
        env={**os.environ, "PGPASSWORD": pg.password.get_secret_value()},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_operator_sql_scripts_with_psql_keep_unrelated_data(own_db: Settings) -> None:
    """migration_v2.sql / rollback_v2.sql as an operator runs them (psql -f) on a database
    that already holds other data, then again on one holding FacePass data."""
    pg = own_db.postgres
    legacy = _psql(pg, "-c", "CREATE TABLE legacy_faces (id int); INSERT INTO legacy_faces "
                   "SELECT generate_series(1, 50)")  # fmt: skip
    assert legacy.returncode == 0, legacy.stderr
    up = _psql(pg, "-f", str(REPO / "deploy/sql/migration_v2.sql"))
    assert up.returncode == 0, up.stderr
    _seed_faces(pg)
    assert _fingerprint(pg)["counts"]["face_embeddings"] == 12
    down = _psql(pg, "-f", str(REPO / "deploy/sql/rollback_v2.sql"))
    assert down.returncode == 0, down.stderr
    assert _fingerprint(pg) == {"tables": []}
    again = _psql(pg, "-f", str(REPO / "deploy/sql/migration_v2.sql"))
    assert again.returncode == 0, again.stderr
    assert _fingerprint(pg)["counts"]["face_embeddings"] == 0
    kept = _psql(pg, "-A", "-t", "-c", "SELECT count(*) FROM legacy_faces")
    assert kept.stdout.strip() == "50"


def test_script_wrappers_back_up_prune_and_restore(own_db: Settings, tmp_path: Path) -> None:
    """backup_database.sh / restore_database.sh (the seed checklist's names) run `facepass
    backup|restore` with the options and POSTGRES_* / PG_BIN_DIR of the environment."""
    pg = own_db.postgres
    prepare_dependencies(own_db)
    _seed_faces(pg)
    original = _fingerprint(pg)
    backups = tmp_path / "backups"
    backups.mkdir()
    old = backups / "facepass_x_20200101T000000Z.dump"
    recent = backups / "facepass_x_29990101T000000Z.dump"
    unrelated = backups / "notes.txt"
    for path in (old, recent, unrelated):
        path.write_text("x")
    forty_days_ago = time.time() - 40 * 86400
    os.utime(old, (forty_days_ago, forty_days_ago))
    os.utime(unrelated, (forty_days_ago, forty_days_ago))

    made = _script(own_db, "backup_database.sh", "--keep-days", "30", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    archives = sorted(backups.glob(f"facepass_{pg.db}_*.dump"))
    assert len(archives) == 1 and stat.S_IMODE(archives[0].stat().st_mode) == 0o600
    assert not old.exists() and recent.exists() and unrelated.exists()
    assert f"deleted (older than 30 days): {old.relative_to(tmp_path)}" in made.stdout

    # A damaged archive is refused and changes nothing.
    broken = tmp_path / "broken.dump"
    broken.write_bytes(archives[0].read_bytes()[:200])
    refused = _script(own_db, "restore_database.sh", "--yes", str(broken), cwd=tmp_path)
    assert refused.returncode != 0
    assert _fingerprint(pg) == original

    # Wipe with the operator rollback script, restore with the wrapper.
    assert _psql(pg, "-f", str(REPO / "deploy/sql/rollback_v2.sql")).returncode == 0
    assert _fingerprint(pg) == {"tables": []}
    restored = _script(own_db, "restore_database.sh", "--yes", str(archives[0]), cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert "face_embeddings 12" in restored.stdout
    assert _fingerprint(pg) == original

    # Restoring over live data (not wiped) also ends in the archive's state.
    _psql(pg, "-c", "DELETE FROM face_embeddings WHERE photo_id = 'p0'")
    again = _script(own_db, "restore_database.sh", "--yes", str(archives[0]), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert _fingerprint(pg) == original


def test_restore_without_confirmation_changes_nothing(own_db: Settings, tmp_path: Path) -> None:
    pg = own_db.postgres
    prepare_dependencies(own_db)
    _seed_faces(pg)
    made = _facepass(own_db, "backup", "--dir", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    archive = next(tmp_path.glob("facepass_*.dump"))
    _psql(pg, "-c", "DELETE FROM photos")
    answer_no = subprocess.run(
        [FACEPASS, "restore", str(archive)], input="n\n", env=_env(own_db), cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert answer_no.returncode != 0
    assert _fingerprint(pg)["counts"]["photos"] == 0


def test_restore_into_a_fresh_embedded_database_as_documented(
    own_db: Settings, tmp_path: Path
) -> None:
    """docs/operations.md: on the embedded stack the bootstrap superuser `postgres` (trusted on
    the unix socket in STATE_DIR/postgres) creates the database, owned by POSTGRES_USER, and
    the vector extension; `facepass restore` as POSTGRES_USER then fills it."""
    pg = own_db.postgres
    prepare_dependencies(own_db)
    _seed_faces(pg)
    original = _fingerprint(pg)
    made = _facepass(own_db, "backup", "--dir", "backups", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    archive = next((tmp_path / "backups").glob("facepass_*.dump"))

    fresh = f"{pg.db}_fresh"
    socket = own_db.stack.state_dir.resolve() / "postgres"
    as_superuser = [pg_tool("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-h", str(socket), "-p",
                    str(pg.port), "-U", "postgres"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    try:
        for dbname, statement in (
            ("postgres", f"CREATE DATABASE {fresh} OWNER {pg.user}"),
            (fresh, "CREATE EXTENSION vector"),
        ):
            done = subprocess.run(
                [*as_superuser, "-d", dbname, "-c", statement],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        into_fresh = own_db.model_copy(update={"postgres": pg.model_copy(update={"db": fresh})})
        restored = _facepass(into_fresh, "restore", "--yes", str(archive), cwd=tmp_path)
        assert restored.returncode == 0, restored.stderr
        assert "face_embeddings 12" in restored.stdout
        assert _fingerprint(into_fresh.postgres) == original
        # The restored tables belong to POSTGRES_USER (--no-owner): the services can write.
        with psycopg.connect(into_fresh.postgres.dsn(), autocommit=True) as conn:
            conn.execute("DELETE FROM erased_sessions WHERE session_id = 's-gone'")
    finally:
        with superuser(own_db) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
