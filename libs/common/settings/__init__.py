"""FacePass settings: every knob is an environment variable (or a line of `.env`).

Names follow the client's v2 `.env` contract (APP_NAME, POSTGRES_*, REDIS_*, S3_*, API_KEYS, ...)
plus KAFKA_*, FACE_*, EMBEDDER_*, RENDITION_*, SEARCH_* and FACEPASS_* for what the stack needs.
Each group is its own `BaseSettings` with an `env_prefix`, so a reader finds `POSTGRES_HOST` under
`settings.postgres.host`. Build settings with `load_settings()` at start-up (never at import
time): it turns pydantic's errors into one message that names the offending variables and never
echoes a secret's value.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from libs.common.settings.base import CsvSecrets, CsvStrings, _Group, is_loopback
from libs.common.settings.face import FaceSettings
from libs.common.settings.groups import (
    AppSettings,
    EmbedderSettings,
    HttpSettings,
    KafkaSettings,
    PostgresSettings,
    RedisSettings,
    S3Settings,
    SearchSettings,
    StackSettings,
)
from libs.common.settings.notify import NotifySettings
from libs.common.settings.renditions import RenditionSettings

__all__ = [
    "AppSettings",
    "CsvSecrets",
    "CsvStrings",
    "EmbedderSettings",
    "FaceSettings",
    "HttpSettings",
    "KafkaSettings",
    "NotifySettings",
    "PostgresSettings",
    "RedisSettings",
    "RenditionSettings",
    "S3Settings",
    "SearchSettings",
    "Settings",
    "SettingsError",
    "StackSettings",
    "is_loopback",
    "load_settings",
]


class Settings(BaseModel):
    """All groups together. Build with `load_settings()`; tests may pass groups directly."""

    model_config = ConfigDict(frozen=True)

    app: AppSettings = Field(default_factory=AppSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    face: FaceSettings = Field(default_factory=FaceSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    renditions: RenditionSettings = Field(default_factory=RenditionSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    stack: StackSettings = Field(default_factory=StackSettings)


class SettingsError(ValueError):
    """Bad configuration; the message names each bad variable, never a secret's value."""


def _env_name(group: type[_Group], field_name: str) -> str:
    field = group.model_fields[field_name]
    if isinstance(field.validation_alias, str):
        return field.validation_alias.upper()
    return f"{group.model_config.get('env_prefix', '')}{field_name}".upper()


def load_settings(**groups: _Group) -> Settings:
    """Read every group from the environment (and `.env`), reporting all problems at once.

    Groups passed as keyword arguments (e.g. `postgres=PostgresSettings(port=5433)`) are used as
    given; that is how tests and the embedded stack override a part without touching os.environ.
    """
    problems: list[str] = []
    built: dict[str, _Group] = dict(groups)
    for name, field in Settings.model_fields.items():
        if name in built:
            continue
        group_cls = field.annotation
        assert isinstance(group_cls, type) and issubclass(group_cls, _Group)
        try:
            built[name] = group_cls()
        except ValidationError as exc:
            for error in exc.errors():
                loc = error["loc"][0] if error["loc"] else ""
                env = _env_name(group_cls, str(loc)) if loc in group_cls.model_fields else str(loc)
                # pydantic's message never contains the input; we add no input either.
                problems.append(f"{env}: {error['msg']}" if env else error["msg"])
    if problems:
        raise SettingsError("invalid settings: " + "; ".join(problems))
    return Settings(**built)
