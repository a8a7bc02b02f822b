"""`facepass index DIR --session S`: bulk-index a folder, with progress and a summary."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from tqdm import tqdm

from facepass.bulk_index import find_photos, index_folder
from facepass.cli.common import settings_or_exit

URL_HELP = "Base URL of the FacePass API (default http://FACEPASS_HOST:FACEPASS_PORT)."
DIRECT_HELP = "Publish to Kafka directly (S3 put + photos.uploaded), as an upstream system."


def index(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of photos."),
    session: str = typer.Option(..., "--session", "-s", help="Session (event) id."),
    url: str | None = typer.Option(None, help=URL_HELP),
    api_key: str | None = typer.Option(None, envvar="FACEPASS_API_KEY", help="X-API-Key."),
    direct: bool = typer.Option(False, "--direct", help=DIRECT_HELP),
    concurrency: int = typer.Option(4, min=1, max=64, help="Uploads in flight."),
) -> None:
    """Index every JPEG/PNG/WebP/GIF/HEIC under FOLDER into SESSION. Rerunning resumes: files
    accepted before are skipped. The photo id of a file is its relative path (sanitised)."""
    settings = settings_or_exit("cli")
    base_url = None
    if not direct:
        base_url = url or f"http://{settings.http.host}:{settings.http.port}"
        keys = settings.app.api_keys
        api_key = api_key or (keys[0].get_secret_value() if keys else None)
    total = len(find_photos(folder))
    with tqdm(total=total, unit="photo", desc=f"indexing into {session}") as bar:
        summary = asyncio.run(
            index_folder(
                settings,
                folder,
                session,
                base_url=base_url,
                api_key=api_key,
                concurrency=concurrency,
                progress=bar.update,
            )
        )
    for line in summary.lines():
        typer.echo(line)
    if summary.rejected:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command()(index)
