"""`facepass db ...`: schema migrations up and down, and the operator SQL scripts."""

from __future__ import annotations

from pathlib import Path

import typer

from facepass.cli.common import settings_or_exit
from libs.common.db.migrate import Migrator, export_scripts

db_app = typer.Typer(
    help="Database schema: migrate, roll back, show, export SQL.", no_args_is_help=True
)


def _migrator() -> Migrator:
    settings = settings_or_exit("db")
    return Migrator(settings.postgres, settings.face.embedding_dimension)


@db_app.command()
def migrate() -> None:
    """Apply every pending migration."""
    applied = _migrator().migrate()
    typer.echo(f"applied: {', '.join(applied) or 'nothing (up to date)'}")


@db_app.command()
def rollback(
    steps: int = typer.Option(1, min=1, help="How many migrations to roll back."),
    all_: bool = typer.Option(False, "--all", help="Roll back every migration."),
) -> None:
    """Roll back the newest migration(s). Drops the tables they created: back up first."""
    rolled = _migrator().rollback(None if all_ else steps)
    typer.echo(f"rolled back: {', '.join(rolled) or 'nothing'}")


@db_app.command()
def status() -> None:
    """Show applied and pending migrations."""
    state = _migrator().state()
    typer.echo(f"applied: {', '.join(state.applied) or '-'}")
    typer.echo(f"pending: {', '.join(state.pending) or '-'}")


OUT_DIR_OPTION = typer.Option(Path("deploy/sql"), help="Where to write the two scripts.")


@db_app.command("export-sql")
def export_sql(
    out_dir: Path = OUT_DIR_OPTION,
) -> None:
    """Write migration_v2.sql and rollback_v2.sql for EMBEDDING_DIMENSION."""
    settings = settings_or_exit("db")
    up, down = export_scripts(settings.face.embedding_dimension)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "migration_v2.sql").write_text(up)
    (out_dir / "rollback_v2.sql").write_text(down)
    typer.echo(f"wrote {out_dir / 'migration_v2.sql'} and {out_dir / 'rollback_v2.sql'}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
