"""`facepass dlq list|drain`: read the dead-letter queue, and replay what was fixed.

The procedure (list, fix the cause per error kind, drain): docs/operations.md, "Dead-letter
queue". Kafka settings (KAFKA_*) come from the environment or .env, as for every command.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from facepass.cli.common import settings_or_exit
from facepass.dlq import DRAIN_GROUP, ERROR_KINDS, DLQError, DrainResult, drain

dlq_app = typer.Typer(
    help="The dead-letter queue: list what waits, drain it and replay chosen error kinds.",
    no_args_is_help=True,
)

Group = Annotated[
    str, typer.Option("--group", help="The consumer group whose offsets mark what was handled.")
]


def _run(group: str, replay: set[str], commit: bool) -> DrainResult:
    settings = settings_or_exit("cli")
    try:
        return asyncio.run(
            drain(settings.kafka, replay=replay, commit=commit, group=group, echo=typer.echo)
        )
    except DLQError as exc:
        typer.echo(f"facepass dlq: {exc}", err=True)
        raise typer.Exit(code=1) from exc


@dlq_app.command("list")
def list_(group: Group = DRAIN_GROUP) -> None:
    """List the DLQ messages after the drain group's offsets; changes nothing.

    One line each: partition/offset, photo, session, error_kind, attempts, error.
    """
    result = _run(group, set(), commit=False)
    typer.echo(f"{result.seen} DLQ messages after group {group}'s offsets.")


@dlq_app.command("drain")
def drain_(
    replay: Annotated[
        list[str] | None,
        typer.Option(
            "--replay",
            metavar="ERROR_KIND",
            help=f"Republish the messages of this error_kind (repeat for several): "
            f"{', '.join(ERROR_KINDS)}.",
        ),
    ] = None,
    group: Group = DRAIN_GROUP,
) -> None:
    """List, replay the --replay kinds, and commit the drain group's offsets.

    Each message of a --replay kind is republished (source.value, keyed by source.key) to the
    uploaded topic; then the group commits, so every message read counts as handled, replayed
    or not, and the next `list` starts after them.
    """
    kinds = set(replay or [])
    if unknown := sorted(kinds - set(ERROR_KINDS)):
        typer.echo(
            f"facepass dlq: unknown --replay {', '.join(unknown)} "
            f"(error kinds: {', '.join(ERROR_KINDS)}); nothing read or changed",
            err=True,
        )
        raise typer.Exit(code=2)
    result = _run(group, kinds, commit=True)
    typer.echo(
        f"{result.seen} DLQ messages after group {group}'s offsets. "
        f"replayed {result.replayed} to {result.replayed_to}, offsets committed"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
