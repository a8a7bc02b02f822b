"""FacePass settings: every knob is an environment variable (or a line of `.env`).

Names follow the client's v2 `.env` contract (APP_NAME, POSTGRES_*, REDIS_*, S3_*, API_KEYS, ...)
plus KAFKA_*, FACE_*, EMBEDDER_*, SEARCH_* and FACEPASS_* for what the stack needs. Each group is
its own `BaseSettings` with an `env_prefix`, so a reader finds `POSTGRES_HOST` under
`settings.postgres.host`. Build settings with `load_settings()` at start-up (never at import
time): it turns pydantic's errors into one message that names the offending variables and never
echoes a secret's value.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
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
    """Where the HTTP services listen (FACEPASS_HOST / FACEPASS_PORT)."""

    model_config = SettingsConfigDict(env_prefix="FACEPASS_")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)


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


class FaceSettings(_Group):
    """Face engine knobs. Names without the FACE_ prefix are the seed's own."""

    model_config = SettingsConfigDict(env_prefix="FACE_")

    model_dir: Path | None = Field(
        default=None, description="An InsightFace-layout pack; unset = the packaged default."
    )
    similarity_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Overrides the pack's recommended threshold."
    )
    detection_threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    min_face_size: int = Field(default=20, ge=1, description="Smallest face side kept, pixels.")
    embedding_dimension: int = Field(default=512, ge=1, validation_alias="EMBEDDING_DIMENSION")
    max_faces_per_photo: int = Field(default=100, ge=1, validation_alias="MAX_FACES_PER_PHOTO")
    providers: CsvStrings = Field(
        default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
        description="onnxruntime execution providers in preference order; absent ones skipped.",
    )
    backend: Literal["auto", "onnxruntime", "openvino"] = Field(
        default="auto",
        description="Inference runtime: auto = OpenVINO where the CPU computes bf16 natively "
        "(and FACE_PROVIDERS names no available GPU provider), else onnxruntime.",
    )
    precision: Literal["auto", "f32", "bf16"] = Field(
        default="auto",
        description="OpenVINO precision: auto = bf16 where the CPU computes it natively.",
    )
    intra_op_threads: int = Field(default=1, ge=0, description="Threads per model session.")
    inference_workers: int = Field(
        default=0,
        ge=0,
        description="Photos analysed at once per process (each on FACE_INTRA_OP_THREADS "
        "threads); 0 = one per CPU core, or 1 on a GPU (one batch across photos).",
    )
    max_image_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(
        default=120_000_000,
        ge=10_000,
        description="Most pixels an upload's header may claim (a 102 MP medium-format JPEG fits).",
    )
    max_decoded_pixels: int = Field(
        default=60_000_000,
        ge=10_000,
        description="Most pixels actually decoded (the bomb guard): larger JPEGs decode reduced "
        "to the largest detector pass; other formats above it are refused.",
    )
    detection_size: int = Field(
        default=640,
        ge=64,
        description="Long side of the whole-photo detector pass (and of detail tiles); "
        "smaller photos are detected at their own size.",
    )
    selfie_detection_size: int = Field(
        default=640,
        ge=64,
        description="Long side of the detector pass on a selfie. 320 halves detection time but "
        "coarser keypoints move the embedding (cosine 0.95-0.99 to the 640 one, see "
        "docs/faces.md); smaller selfies are detected at their own size.",
    )
    detail_min_side: int = Field(
        default=1600,
        ge=64,
        description="Photos with a longer side also get a tiled detail pass for small faces.",
    )
    detail_max_side: int = Field(
        default=2560,
        ge=0,
        description="Long side the detail pass scales the photo to (cost grows with its "
        "square); 0 turns the detail pass off.",
    )
    detail_min_decode_side: int = Field(
        default=1920,
        ge=64,
        description="A JPEG photo is decoded reduced (DCT scaling) while its long side stays >= "
        "this and >= FACE_DETECTION_SIZE; the detail pass then runs at most at the decoded "
        "size. 1920 decodes 12 MP at half size: 1.7x the photos/s at the same EP-12 accuracy "
        "(docs/faces.md); FACE_DETAIL_MAX_SIDE gives the sharpest detail pass.",
    )
    min_sharpness: float = Field(
        default=10.0,
        ge=0.0,
        description="Quality gate: least variance of the Laplacian on the 112 px aligned "
        "face; below it a face is rejected as blurry.",
    )
    embedding_batch_size: int = Field(
        default=32, ge=1, description="Faces per recogniser call (chunks of a batch)."
    )

    @property
    def photo_decode_side(self) -> int:
        """The long side a photo keeps when decoded reduced: enough for the whole-photo pass,
        and for the detail pass up to FACE_DETAIL_MIN_DECODE_SIDE."""
        if self.detail_max_side <= 0:
            return self.detection_size
        return max(self.detection_size, min(self.detail_max_side, self.detail_min_decode_side))

    @property
    def decode_limits(self) -> dict[str, int]:
        """The caps every decode of untrusted bytes takes (decode_image, probe_image)."""
        return {
            "max_bytes": self.max_image_bytes,
            "max_pixels": self.max_image_pixels,
            "max_decoded_pixels": self.max_decoded_pixels,
        }


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
        description="Sessions with this many faces or more are searched in memory (an exact "
        "matrix product) instead of by an SQL scan; 0 = always SQL.",
    )
    matrix_memory_mb: int = Field(
        default=1024,
        ge=0,
        description="Memory per search process for in-memory sessions (~2 kB per face); the "
        "least recently searched session is dropped first. A load briefly needs about twice "
        "the session's size.",
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

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value


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
    search: SearchSettings = Field(default_factory=SearchSettings)
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
                problems.append(f"{env}: {error['msg']}")
    if problems:
        raise SettingsError("invalid settings: " + "; ".join(problems))
    return Settings(**built)
