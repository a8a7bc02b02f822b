"""The settings groups of the servers and services (APP, HTTP, POSTGRES, REDIS, S3, KAFKA,
EMBEDDER, SEARCH, FACEPASS stack); the face engine's are in face.py."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from libs.common.settings.base import CsvSecrets, CsvStrings, _Group


class AppSettings(_Group):
    """Process-wide settings (no prefix, as in the seed's `.env`)."""

    app_name: str = "FacePass"
    app_version: str = "2.0.0"
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    api_keys: CsvSecrets = Field(
        default_factory=list,
        description="Comma-separated keys accepted in X-API-Key for index/status/erase routes.",
    )
    cors_origins: CsvStrings = Field(default_factory=list)
    session_retention_days: int = Field(
        default=0,
        ge=0,
        description="Erase sessions (rows, vectors, photos) this many days after they were "
        "created; 0 keeps them until erased. A session's own expires_at always applies.",
    )
    retention_check_s: int = Field(
        default=3600, ge=1, description="How often the retention job looks for expired sessions."
    )

    @field_validator("api_keys")
    @classmethod
    def _keys_long_enough(cls, value: list[SecretStr]) -> list[SecretStr]:
        for key in value:
            if len(key.get_secret_value()) < 8:
                raise ValueError("every API key must be at least 8 characters")
        return value


class HttpSettings(_Group):
    """Where the HTTP services listen (FACEPASS_HOST / FACEPASS_PORT) and the base URL the
    public sees them at (FACEPASS_PUBLIC_URL)."""

    model_config = SettingsConfigDict(env_prefix="FACEPASS_")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    access_log_sample: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        validation_alias="ACCESS_LOG_SAMPLE",
        description="Share of successful requests that get an access-log line (answers of "
        "400 and above always do); 0 turns the access log off.",
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL attendees open the event page at, put in the printed event QR "
        "codes (e.g. https://photos.example.org behind a TLS proxy, whose scheme and host the "
        "app cannot see); unset = each QR request's own scheme://host.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url_is_a_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname or {"?", "#"} & set(value):
            raise ValueError(
                "must be an http(s) URL without query or fragment, such as "
                "https://photos.example.org"
            )
        return value.rstrip("/")


class PostgresSettings(_Group):
    model_config = SettingsConfigDict(env_prefix="POSTGRES_")

    user: str = "facepass"
    password: SecretStr = SecretStr("facepass")
    db: str = "facepass_vector"
    host: str = "127.0.0.1"
    port: int = Field(default=5432, ge=1, le=65535)
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)

    def dsn(self, driver: str = "postgresql") -> str:
        """Connection URL; contains the password, so never log it."""
        password = self.password.get_secret_value()
        return f"{driver}://{self.user}:{password}@{self.host}:{self.port}/{self.db}"


class RedisSettings(_Group):
    model_config = SettingsConfigDict(env_prefix="REDIS_")

    host: str = "127.0.0.1"
    port: int = Field(default=6379, ge=1, le=65535)
    db: int = Field(default=0, ge=0, le=15)
    password: SecretStr | None = None


class S3Settings(_Group):
    model_config = SettingsConfigDict(env_prefix="S3_")

    endpoint: str = "http://127.0.0.1:8333"
    access_key: SecretStr = SecretStr("facepass")
    secret_key: SecretStr = SecretStr("facepass-secret")
    bucket: str = "facepass-images"
    region: str = "us-east-1"
    public_endpoint: str | None = Field(
        default=None,
        description="Base URL browsers reach S3 at, for the presigned photo links in search "
        "results (e.g. a proxy on the venue LAN); unset = S3_ENDPOINT.",
    )

    @field_validator("endpoint", "public_endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8333")
        return value.rstrip("/")

    @property
    def link_endpoint(self) -> str:
        """Where presigned links point: S3_PUBLIC_ENDPOINT, else S3_ENDPOINT."""
        return self.public_endpoint or self.endpoint

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.endpoint)
        return parts.port or (443 if parts.scheme == "https" else 80)


class KafkaSettings(_Group):
    model_config = SettingsConfigDict(env_prefix="KAFKA_")

    bootstrap: str = "127.0.0.1:9092"
    topic_uploaded: str = "facepass.photos.uploaded.v1"
    topic_indexed: str = "facepass.photos.indexed.v1"
    topic_dlq: str = "facepass.photos.dlq.v1"
    topic_matched: str = "facepass.photos.matched.v1"
    partitions: int = Field(
        default=12, ge=1, description="Partitions of the uploaded topic: the most embedders."
    )
    consumer_group: str = "facepass-embedder"
    enable_idempotence: bool = Field(
        default=False, description="Idempotent producer; the embedded tansu broker lacks it."
    )

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError("must be host:port[,host:port...] such as 127.0.0.1:9092")
        return value

    @property
    def first_host(self) -> str:
        return self.bootstrap.split(",")[0].rpartition(":")[0]

    @property
    def first_port(self) -> int:
        return int(self.bootstrap.split(",")[0].rpartition(":")[2])


class EmbedderSettings(_Group):
    """The embedder consumer group (EMBEDDER_*)."""

    model_config = SettingsConfigDict(env_prefix="EMBEDDER_")

    batch_size: int = Field(default=16, ge=1, le=500, description="Most records per batch.")
    batch_wait_ms: int = Field(
        default=200, ge=1, description="How long a poll waits to fill a batch."
    )
    download_concurrency: int = Field(default=8, ge=1, description="Parallel S3 fetches.")
    missing_object_attempts: int = Field(
        default=3, ge=1, description="Fetches of a missing S3 object before it goes to the DLQ."
    )
    retry_max_s: float = Field(
        default=30.0, gt=0, description="Longest back-off between retries of a failed batch."
    )


class SearchSettings(_Group):
    """The search API and the limits of every public route (SEARCH_*, RATE_LIMIT_*)."""

    model_config = SettingsConfigDict(env_prefix="SEARCH_")

    default_limit: int = Field(default=100, ge=1, le=1000)
    min_threshold: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Lowest threshold a caller may ask for: lower ones would list strangers.",
    )
    cache_ttl_s: int = Field(default=300, ge=0, description="0 turns the result cache off.")
    url_expires_s: int = Field(default=3600, ge=60, description="Presigned photo URL lifetime.")
    originals: bool = Field(
        default=True,
        description="Search results carry a link to the original photo; false: only the "
        "thumbnail and (watermarked, if set) preview, and the page downloads the preview.",
    )
    rate_limit_per_minute: int = Field(
        default=60, ge=0, description="Searches per client IP per minute; 0 = no limit."
    )
    keyed_rate_limit_per_minute: int = Field(
        default=1200,
        ge=0,
        validation_alias="RATE_LIMIT_API_KEY_PER_MINUTE",
        description="Requests per API key per minute on keyed routes; 0 = no limit.",
    )
    trusted_proxies: CsvStrings = Field(
        default_factory=list,
        validation_alias="TRUSTED_PROXIES",
        description="Proxy addresses/CIDRs whose X-Forwarded-For is believed.",
    )
    matrix_min_faces: int = Field(
        default=20_000,
        ge=0,
        description="Sessions with this many faces or more are searched in memory (an int8 "
        "scan names the candidate photos, the exact SQL compares only their faces) instead of "
        "by an SQL scan of all; 0 = always SQL.",
    )
    matrix_memory_mb: int = Field(
        default=1024,
        ge=0,
        description="Memory per search process for in-memory sessions (524 B per 512-d face); "
        "the least recently searched session is dropped first. A load reads the session "
        "chunk by chunk (never whole in float32).",
    )
    matrix_refresh_s: float = Field(
        default=10.0,
        gt=0,
        description="Least time between two loads of one session (a session being indexed "
        "changes all the time; until its reload it is searched by SQL).",
    )
    cache_secret: SecretStr | None = Field(
        default=None,
        description="Key of the keyed hash of selfies in cache keys; unset = one generated "
        "and shared through Redis.",
    )
    query_expansion: bool = Field(
        default=True,
        description="Session query expansion: the matches at SEARCH_EXPANSION_THRESHOLD or "
        "above lend their faces to a refined query, searched in a second exact pass. On: over "
        "20 calibration draws it found more at the same worst-draw precision (docs/faces.md).",
    )
    expansion_threshold: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="Similarity a match needs to lend its face to the refined query; a search "
        "at a higher threshold uses its own. At least SEARCH_MIN_THRESHOLD.",
    )
    expansion_faces: int = Field(
        default=5, ge=1, le=100, description="Most faces (best first) lent to the refined query."
    )
    selfies_fusion: Literal["mean", "max"] = Field(
        default="mean",
        description="How a search with several selfies combines them: mean (one query with "
        "their normalised mean embedding) or max (one query per selfie, each photo at its best "
        "similarity). Measured on LFW-Events in docs/faces.md.",
    )
    subscription_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description="Days a consented 'notify me' subscription (its fused selfie embedding) "
        "is kept, capped by the session's own retention; then it is deleted.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @model_validator(mode="after")
    def _lenders_are_stricter_than_matches(self) -> SearchSettings:
        """The strict threshold is never below a search's own (a search at a higher one uses
        its own), so one under the lowest a search may use could never apply: a mistake."""
        if self.expansion_threshold < self.min_threshold:
            raise ValueError(
                f"SEARCH_EXPANSION_THRESHOLD ({self.expansion_threshold}) must be at least "
                f"SEARCH_MIN_THRESHOLD ({self.min_threshold})"
            )
        return self

    @model_validator(mode="after")
    def _cached_links_stay_valid(self) -> SearchSettings:
        """A cached answer is handed out up to SEARCH_CACHE_TTL_S after its links were signed;
        each link must still have at least half its lifetime left then."""
        if self.cache_ttl_s > self.url_expires_s // 2:
            raise ValueError(
                f"SEARCH_CACHE_TTL_S ({self.cache_ttl_s}) must be at most half of "
                f"SEARCH_URL_EXPIRES_S ({self.url_expires_s}): a cached search would hand out "
                "photo links that are about to expire or already have"
            )
        return self


class StackSettings(_Group):
    """The embedded real stack of `facepass up`."""

    model_config = SettingsConfigDict(env_prefix="FACEPASS_")

    state_dir: Path = Path(".facepass")
    embedded: Literal["auto", "none"] = Field(
        default="auto",
        description="auto: start an embedded server for every dependency whose host is "
        "loopback; none: start nothing (all servers are external).",
    )
    start_timeout_s: float = Field(default=60.0, gt=0)
    demo: bool = Field(
        default=True,
        description="facepass up indexes a demo session from the packaged sample photos.",
    )
