"""The `facepass` command: one entry point for the stack, the services and the tools.

Each sub-command lives in its own module and is registered here.
"""

from __future__ import annotations

import faulthandler
import signal
import sys

import typer

app = typer.Typer(
    name="facepass",
    help="FacePass: face search for event photography.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported here so that `facepass --help` stays fast and modules stay independent.
    from facepass.cli import db_cmd, serve_cmd, stack_cmd

    stack_cmd.register(app)
    serve_cmd.register(app)
    db_cmd.register(app)
    from facepass.cli import backup_cmd

    backup_cmd.register(app)

    from facepass.cli import index_cmd, lag_cmd, schemas_cmd

    schemas_cmd.register(app)
    index_cmd.register(app)
    lag_cmd.register(app)
    from facepass.cli import dlq_cmd, renditions_cmd

    dlq_cmd.register(app)
    renditions_cmd.register(app)


def main() -> None:
    # SIGUSR1 writes every thread's stack to stderr (the log) and the process carries on: how
    # an operator, or a test that gave up waiting, sees where a stuck process is. Registered
    # first, so the signal never meets its default action (exit), even while a stack starts.
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    _register()
    app()
