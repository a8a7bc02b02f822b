"""What every settings group shares: the .env source, comma-separated lists, loopback hosts."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    SecretStr,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", ""}


def is_loopback(host: str) -> bool:
    """True when `host` names this machine: the embedded stack may serve it."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# A list read from one comma-separated variable (`a, b,c`); NoDecode stops pydantic-settings
# from parsing the value as JSON first.
CsvStrings = Annotated[list[str], NoDecode, BeforeValidator(_split_csv)]
CsvSecrets = Annotated[list[SecretStr], NoDecode, BeforeValidator(_split_csv)]


class _Group(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        case_sensitive=False,
    )
