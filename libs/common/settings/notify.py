"""Webhook delivery of notify-me matches (NOTIFY_*): the `notifier` service POSTs each
`photos.matched` event to the webhook of the API key that owns the event's session."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from libs.common.settings.base import _Group, _split_csv


def _pairs(value: object) -> object:
    """`key_id=https://...,key_id=https://...` as a mapping (a mapping passes as it is)."""
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for item in _split_csv(value):
        key, sep, url = item.partition("=")
        if not sep or not key.strip() or not url.strip():
            raise ValueError(f"{item!r}: expected <api key id>=<https URL>")
        pairs[key.strip()] = url.strip()
    return pairs


Webhooks = Annotated[dict[str, str], NoDecode, BeforeValidator(_pairs)]


class NotifySettings(_Group):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_")

    webhooks: Webhooks = Field(
        default_factory=dict,
        description="Where matched events go, per API key: comma-separated <key id>=<URL> "
        "(a key's id is the first 12 hex digits of its SHA-256, as the access log shows it). "
        "Each POST is signed with HMAC-SHA256 keyed with that API key (docs/events.md). "
        "Empty: no webhooks (platforms read facepass.photos.matched.v1).",
    )
    max_attempts: int = Field(
        default=6, ge=1, le=20, description="Deliveries of one event before it counts as failed."
    )
    retry_base_s: float = Field(
        default=1.0, gt=0, description="First back-off between attempts; it doubles each time."
    )
    timeout_s: float = Field(default=5.0, gt=0, description="One delivery's HTTP timeout.")
    consumer_group: str = "facepass-notifier"

    @field_validator("webhooks")
    @classmethod
    def _urls_are_http(cls, value: dict[str, str]) -> dict[str, str]:
        for key, url in value.items():
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"{key}: {url!r} is not an http(s) URL")
        return value
