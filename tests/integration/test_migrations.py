"""Schema migrations go up and down on a real PostgreSQL, and the operator scripts match them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from libs.common.db.migrate import Migrator, export_scripts
from libs.common.settings import PostgresSettings, Settings
from tests.support.stack import superuser

REPO = Path(__file__).resolve().parents[2]
V2_TABLES = {"sessions", "photos", "face_embeddings", "erased_sessions", "erased_photos"}


@pytest.fixture
def scratch_db(stack: Settings) -> Iterator[PostgresSettings]:
    """A fresh database with pgvector, owned by the FacePass role, dropped afterwards."""
    name = f"mig_{uuid.uuid4().hex[:8]}"
    with superuser(stack) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{stack.postgres.user}"')
    with superuser(stack, name) as conn:
        conn.execute("CREATE EXTENSION vector")
    yield stack.postgres.model_copy(update={"db": name})
    with superuser(stack) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _all_tables(pg: PostgresSettings) -> set[str]:
    with psycopg.connect(pg.dsn()) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def _tables(pg: PostgresSettings) -> set[str]:
    return _all_tables(pg) & V2_TABLES


def _photo_columns(pg: PostgresSettings) -> set[str]:
    with psycopg.connect(pg.dsn()) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'photos'"
        ).fetchall()
    return {r[0] for r in rows}


RENDITION_COLUMNS = {"thumbnail_key", "preview_key", "width", "height", "object_bucket"}
EVERY_MIGRATION = [
    "0001_schema_v2", "0002_renditions", "0003_face_changes", "0004_faces_in_row",
    "0005_subscriptions", "0006_session_owner",
]  # fmt: skip
SUBSCRIPTION_TABLES = {"match_subscriptions", "subscription_matches"}


def test_migrate_rollback_migrate(scratch_db: PostgresSettings) -> None:
    migrator = Migrator(scratch_db, embedding_dimension=512)
    assert migrator.state().pending == EVERY_MIGRATION
    assert migrator.migrate() == EVERY_MIGRATION
    assert _tables(scratch_db) == V2_TABLES
    assert _photo_columns(scratch_db) >= RENDITION_COLUMNS
    assert migrator.migrate() == []  # idempotent
    assert _all_tables(scratch_db) >= SUBSCRIPTION_TABLES
    assert migrator.rollback() == ["0006_session_owner"]  # one step by default
    assert migrator.rollback() == ["0005_subscriptions"]
    assert not SUBSCRIPTION_TABLES & _all_tables(scratch_db)
    assert migrator.rollback() == ["0004_faces_in_row"]
    assert migrator.rollback() == ["0003_face_changes"]
    assert migrator.rollback() == ["0002_renditions"]
    assert _tables(scratch_db) == V2_TABLES
    assert not RENDITION_COLUMNS & _photo_columns(scratch_db)
    assert migrator.rollback() == ["0001_schema_v2"]
    assert _tables(scratch_db) == set()
    assert migrator.migrate() == EVERY_MIGRATION
    assert _tables(scratch_db) == V2_TABLES
    assert migrator.state().applied == EVERY_MIGRATION


def test_embedding_column_takes_the_configured_dimension(scratch_db: PostgresSettings) -> None:
    Migrator(scratch_db, embedding_dimension=128).migrate()
    with psycopg.connect(scratch_db.dsn()) as conn:
        column_type = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'face_embeddings'::regclass AND attname = 'embedding'"
        ).fetchone()[0]
    assert column_type == "vector(128)"


def test_schema_holds_what_the_pipeline_needs(scratch_db: PostgresSettings) -> None:
    Migrator(scratch_db, embedding_dimension=3).migrate()
    with psycopg.connect(scratch_db.dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO sessions (session_id) VALUES ('s1')")
        conn.execute(
            "INSERT INTO photos (photo_id, session_id, object_key) VALUES ('p1', 's1', 'k')"
        )
        conn.execute(
            "INSERT INTO face_embeddings (photo_id, face_index, session_id, bbox, det_score, "
            "embedding, model_id) VALUES ('p1', 0, 's1', '{1,2,3,4}', 0.9, '[1,0,0]', 'm')"
        )
        status = conn.execute("SELECT status FROM photos").fetchone()[0]
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO face_embeddings (photo_id, face_index, session_id, bbox, det_score,"
                " embedding, model_id) VALUES ('p1', 0, 's1', '{1,2,3,4}', 0.9, '[0,1,0]', 'm')"
            )
        # Erasing a session removes its photos and their vectors.
        conn.execute("DELETE FROM sessions WHERE session_id = 's1'")
        left = conn.execute("SELECT count(*) FROM face_embeddings").fetchone()[0]
    assert status == "queued"
    assert left == 0


def test_rollback_script_runs_on_a_database_holding_data(scratch_db: PostgresSettings) -> None:
    up, down = export_scripts(512)
    with psycopg.connect(scratch_db.dsn(), autocommit=True) as conn:
        conn.execute(up)
        conn.execute("INSERT INTO sessions (session_id) VALUES ('keep')")
        conn.execute(down)
    assert _tables(scratch_db) == set()


def test_committed_operator_scripts_match_the_migrations() -> None:
    """deploy/sql is generated by `facepass db export-sql`; this fails when it drifts."""
    up, down = export_scripts(512)
    assert (REPO / "deploy/sql/migration_v2.sql").read_text() == up
    assert (REPO / "deploy/sql/rollback_v2.sql").read_text() == down


def _toasted(pg: PostgresSettings) -> int:
    """Bytes of face_embeddings' TOAST table (0 while no value was moved out of line)."""
    with psycopg.connect(pg.dsn()) as conn:
        size = conn.execute(
            "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE relname = 'face_embeddings'"
        ).fetchone()[0]
    return int(size)


def test_a_face_row_keeps_its_small_columns_in_line(scratch_db: PostgresSettings) -> None:
    """With 512-d vectors (a ~2.2 kB row), 0004 keeps photo_id, session_id, bbox and model_id
    in the row; without it (rolled back) PostgreSQL moves them to TOAST."""
    migrator = Migrator(scratch_db, embedding_dimension=512)
    migrator.migrate()
    insert = (
        "INSERT INTO face_embeddings (photo_id, face_index, session_id, bbox, det_score, "
        "embedding, model_id) VALUES (%s, 0, 's1', '{1,2,3,4}', 0.9, %s, "
        "'vectron-scrfd500m-w600kmbf-v1')"
    )
    vector = "[" + ",".join(["0.04"] * 512) + "]"

    def add(photo: str) -> None:
        with psycopg.connect(scratch_db.dsn(), autocommit=True) as conn:
            conn.execute("INSERT INTO sessions (session_id) VALUES ('s1') ON CONFLICT DO NOTHING")
            conn.execute(
                "INSERT INTO photos (photo_id, session_id, object_key) VALUES (%s, 's1', 'k')",
                (photo,),
            )
            conn.execute(insert, (photo, vector))

    add("in-line-photo-0123456789abcdef0123456789")
    assert _toasted(scratch_db) == 0
    assert migrator.rollback() == ["0006_session_owner"]
    assert migrator.rollback() == ["0005_subscriptions"]
    assert migrator.rollback() == ["0004_faces_in_row"]
    add("toasted-photo-0123456789abcdef0123456789")
    assert _toasted(scratch_db) > 0
