"""`facepass up`: the real stack on embedded defaults, then the services, until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from types import FrameType

import typer

from facepass.bootstrap import prepare_dependencies
from facepass.cli.common import STATE_DIR_OPTION, settings_or_exit
from facepass.server import PortInUseError, check_http_port, serve, targets
from libs.stack.process import StackError
from libs.stack.stack import EmbeddedStack


def _sigterm_as_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


SERVE_OPTION = typer.Option(
    "all", "--target", "-t", help="Services to run once the stack is up ('none': only the stack)."
)


def up(state_dir: Path | None = STATE_DIR_OPTION, target: str = SERVE_OPTION) -> None:
    """Start PostgreSQL+pgvector, S3, the Kafka broker and Valkey (those not external), migrate
    the database, create the bucket and topics, then serve the API until Ctrl-C / SIGTERM."""
    if target != "none" and target not in targets():
        typer.echo(f"unknown target {target!r}; choose from none, {', '.join(targets())}", err=True)
        raise typer.Exit(code=2)
    settings = settings_or_exit("stack", state_dir=state_dir)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    stack = EmbeddedStack(settings)
    try:
        if target != "none":
            check_http_port(settings)
        stack.start()
        prepare_dependencies(settings)
        typer.echo(f"FacePass stack is up (state in {stack.state_dir}):")
        for line in stack.banner():
            typer.echo(line)
        if target == "none":
            typer.echo("Press Ctrl-C to stop.")
            while True:
                signal.pause()
        http = settings.http
        typer.echo(
            f"  api       http://{http.host}:{http.port}/api/v2 (target {target}; docs at /docs)"
        )
        typer.echo("Press Ctrl-C to stop.")
        asyncio.run(serve(settings, target))
    except (StackError, PortInUseError) as exc:
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
