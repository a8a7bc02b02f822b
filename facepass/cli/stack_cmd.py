"""`facepass up`: the real stack on embedded defaults, then the services, until Ctrl-C."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import typer

from facepass.bootstrap import prepare_dependencies
from facepass.cli.common import STATE_DIR_OPTION, settings_or_exit
from libs.stack.process import StackError
from libs.stack.stack import EmbeddedStack


def _sigterm_as_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def up(state_dir: Path | None = STATE_DIR_OPTION) -> None:
    """Start PostgreSQL+pgvector, S3, the Kafka broker and Valkey (those not external), migrate
    the database, create the bucket and topics, and serve until Ctrl-C / SIGTERM."""
    settings = settings_or_exit("stack", state_dir=state_dir)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    stack = EmbeddedStack(settings)
    try:
        stack.start()
        prepare_dependencies(settings)
        typer.echo(f"FacePass stack is up (state in {stack.state_dir}):")
        for line in stack.banner():
            typer.echo(line)
        typer.echo("Press Ctrl-C to stop.")
        while True:
            signal.pause()
    except StackError as exc:
        typer.echo(f"facepass up: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    except KeyboardInterrupt:
        typer.echo("stopping...", err=True)
    finally:
        # A second Ctrl-C (or the TERM a terminal sends to the whole group) must not cut the
        # orderly stop short: the broker flushes its log to S3 before S3 goes away.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()


def register(app: typer.Typer) -> None:
    app.command()(up)
