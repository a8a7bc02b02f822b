"""`facepass serve --target all|ingest|embedder|search-api`: run services against servers that
are already up (compose, Kubernetes, or another `facepass up`)."""

from __future__ import annotations

import asyncio
import contextlib

import typer

from facepass.cli.common import settings_or_exit
from facepass.server import PortInUseError, check_http_port, serve, targets

TARGET_HELP = "What to run: all, or one service (ingest, embedder, search-api)."


def serve_command(
    target: str = typer.Option("all", "--target", "-t", help=TARGET_HELP),
    list_targets: bool = typer.Option(False, "--list-targets", help="Print the targets."),
) -> None:
    """Serve the API routes of the target on FACEPASS_HOST:FACEPASS_PORT (plus health and
    metrics), and run its Kafka consumers, until Ctrl-C / SIGTERM."""
    known = targets()
    if list_targets:
        for name, services in known.items():
            typer.echo(f"{name:<11} {', '.join(services)}")
        return
    if target not in known:
        typer.echo(f"unknown target {target!r}; choose from {', '.join(known)}", err=True)
        raise typer.Exit(code=2)
    settings = settings_or_exit(target)
    try:
        check_http_port(settings)
    except PortInUseError as exc:
        typer.echo(f"facepass serve: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, target))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
