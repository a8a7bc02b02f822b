"""What every sub-command does first: read settings (or exit with a clear message), set up logs."""

from __future__ import annotations

from pathlib import Path

import typer

from libs.common.log import configure_logging
from libs.common.settings import Settings, SettingsError, StackSettings, load_settings


def settings_or_exit(service: str, *, state_dir: Path | None = None) -> Settings:
    try:
        overrides = {}
        if state_dir is not None:
            overrides["stack"] = StackSettings(state_dir=state_dir)
        settings = load_settings(**overrides)
    except SettingsError as exc:
        typer.echo(f"facepass: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    configure_logging(service, debug=settings.app.debug, level=settings.app.log_level)
    return settings


STATE_DIR_OPTION = typer.Option(
    None, "--state-dir", help="Where embedded servers keep data (FACEPASS_STATE_DIR, ./.facepass)."
)
