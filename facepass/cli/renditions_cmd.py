"""`facepass renditions backfill [--session S]`: thumbnails and previews for photos indexed
before renditions existed (facepass/renditions_backfill.py)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import asyncpg
import typer

from facepass.cli.common import settings_or_exit
from facepass.renditions_backfill import backfill
from libs.common.events import is_valid_id
from libs.common.storage import StorageUnavailableError

renditions_app = typer.Typer(
    help="Thumbnails and previews of indexed photos.", no_args_is_help=True
)


@renditions_app.command("backfill")
def backfill_(
    session: Annotated[
        str | None,
        typer.Option("--session", "-s", help="Only this session's photos (default: all)."),
    ] = None,
) -> None:
    """Make the missing thumbnails and previews (photos indexed before renditions existed).

    Safe to rerun, and to run while the embedder runs."""
    if session is not None and not is_valid_id(session):
        typer.echo(f"facepass renditions: invalid session id {session!r}", err=True)
        raise typer.Exit(code=2)
    settings = settings_or_exit("cli")
    done = 0

    def progress(count: int) -> None:
        nonlocal done
        done += count
        typer.echo(f"  {done} photos done")

    try:
        summary = asyncio.run(backfill(settings, session_id=session, progress=progress))
    except (OSError, StorageUnavailableError, asyncpg.PostgresError) as exc:
        # What is done stays done: a rerun goes on from there.
        typer.echo(f"facepass renditions: stopped, {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(summary.line())


def register(app: typer.Typer) -> None:
    app.add_typer(renditions_app, name="renditions")
