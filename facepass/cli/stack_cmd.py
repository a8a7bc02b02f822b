"""`facepass up`: the real stack on embedded defaults, then the services, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import threading
from pathlib import Path
from types import FrameType

import httpx
import typer

from facepass.bootstrap import prepare_dependencies
from facepass.cli.common import STATE_DIR_OPTION, settings_or_exit
from facepass.demo import DEMO_SESSION, index_demo
from facepass.server import PortInUseError, check_http_port, serve, targets
from libs.common.settings import Settings
from libs.stack.process import StackError
from libs.stack.stack import EmbeddedStack


def _base_url(settings: Settings) -> str:
    host = settings.http.host
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{settings.http.port}"


async def _serve_and_demo(settings: Settings, target: str) -> None:
    """Serve; once the API answers, index the demo session (FACEPASS_DEMO) and say where."""
    server = asyncio.create_task(serve(settings, target))
    if settings.stack.demo and target == "all":
        base = _base_url(settings)
        async with httpx.AsyncClient(timeout=2) as client:
            while not server.done():
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{base}/api/v2/health/live")).status_code == 200:
                        break
                await asyncio.sleep(0.5)
        if not server.done():
            try:
                summary = await index_demo(settings)
                count = summary.accepted + summary.duplicates + summary.skipped
                typer.echo(
                    f"  demo      {base}/s/{DEMO_SESSION} ({count} sample photos in session "
                    f"'{DEMO_SESSION}'; search it with a selfie)"
                )
            except Exception as exc:  # the demo must never stop the service
                typer.echo(f"  demo      not indexed ({type(exc).__name__})", err=True)
    await server


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
    # A process started in the background by a non-interactive shell inherits SIGINT ignored;
    # `facepass up` must stop on Ctrl-C / SIGINT however it was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stack = EmbeddedStack(settings)
    try:
        if target != "none":
            check_http_port(settings)
        stack.start()
        # Giving up on a server ends `facepass up` as SIGTERM does; sent to the main thread, as
        # signal.pause() wakes only for a signal delivered to it.
        stack.supervise(
            functools.partial(signal.pthread_kill, threading.get_ident(), signal.SIGTERM)
        )
        prepare_dependencies(settings)
        typer.echo(f"FacePass stack is up (state in {stack.state_dir}):")
        for line in stack.banner():
            typer.echo(line)
        if target == "none":
            typer.echo("Press Ctrl-C to stop.")
            while True:
                signal.pause()
        base = _base_url(settings)
        typer.echo(f"  api       {base}/api/v2 (target {target}; OpenAPI docs at {base}/docs)")
        if target in ("all", "search-api"):
            typer.echo(f"  page      {base}/ (attendee page: find my photos)")
        typer.echo("Press Ctrl-C to stop.")
        asyncio.run(_serve_and_demo(settings, target))
    except (StackError, PortInUseError) as exc:
        typer.echo(f"facepass up: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    except KeyboardInterrupt as exc:
        if stack.failure is not None:
            typer.echo(f"facepass up: {stack.failure}", err=True)
            raise typer.Exit(code=1) from exc
        typer.echo("stopping...", err=True)
    finally:
        # A second Ctrl-C (or the TERM a terminal sends to the whole group) must not cut the
        # orderly stop short: the broker flushes its log to S3 before S3 goes away.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()


def register(app: typer.Typer) -> None:
    app.command()(up)
