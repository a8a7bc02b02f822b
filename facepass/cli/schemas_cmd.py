"""`facepass schemas export`: regenerate the committed contracts under schemas/."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from facepass.cli.common import settings_or_exit
from facepass.contracts import contract_files

schemas_app = typer.Typer(help="Event contracts (JSON Schema, AsyncAPI).", no_args_is_help=True)
OUT_OPTION = typer.Option(Path("schemas"), help="Folder to write the documents to.")


@schemas_app.command("export")
def export(out: Path = OUT_OPTION) -> None:
    """Write the events' JSON Schemas and the AsyncAPI document (default topic names)."""
    settings = settings_or_exit("schemas")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in asyncio.run(contract_files(settings)).items():
        (out / name).write_text(text)
        typer.echo(f"wrote {out / name}")


def register(app: typer.Typer) -> None:
    app.add_typer(schemas_app, name="schemas")
