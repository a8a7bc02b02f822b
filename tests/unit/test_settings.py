"""Settings: the seed's variables, clear errors naming the bad variable, no secret echoed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from libs.common.settings import Settings, SettingsError, _env_name, is_loopback, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No .env from the developer's checkout and no stray variables."""
    monkeypatch.chdir(tmp_path)


def _all_env_names() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        group = field.annotation
        names |= {_env_name(group, name) for name in group.model_fields}
    return names


def test_seed_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    seed = {
        "APP_NAME": "FacePass", "APP_VERSION": "2.0.0", "DEBUG": "False",
        "POSTGRES_USER": "facepass_prod_user", "POSTGRES_PASSWORD": "pw-long-and-secret",
        "POSTGRES_DB": "facepass_vector", "POSTGRES_HOST": "db_vector", "POSTGRES_PORT": "5432",
        "REDIS_HOST": "redis", "REDIS_PORT": "6379", "REDIS_DB": "0",
        "S3_ENDPOINT": "https://s3.beget.com", "S3_ACCESS_KEY": "ak", "S3_SECRET_KEY": "sk",
        "S3_BUCKET": "facepass-images", "S3_REGION": "ru-1",
        "API_KEYS": "0123456789abcdef,fedcba9876543210",
        "CORS_ORIGINS": "https://yourdomain.com,https://app.yourdomain.com",
        "FACE_SIMILARITY_THRESHOLD": "0.5", "FACE_DETECTION_THRESHOLD": "0.6",
        "EMBEDDING_DIMENSION": "512",
    }  # fmt: skip
    for key, value in seed.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.postgres.host == "db_vector"
    assert settings.postgres.dsn().endswith("@db_vector:5432/facepass_vector")
    assert settings.s3.host == "s3.beget.com" and settings.s3.port == 443
    assert [k.get_secret_value() for k in settings.app.api_keys] == [
        "0123456789abcdef",
        "fedcba9876543210",
    ]
    assert settings.app.cors_origins == ["https://yourdomain.com", "https://app.yourdomain.com"]
    assert settings.face.similarity_threshold == 0.5
    assert settings.face.embedding_dimension == 512


def test_errors_name_every_bad_variable_and_hide_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_PORT", "70000")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "no-port-here")
    monkeypatch.setenv("API_KEYS", "short-secret-1")
    monkeypatch.setenv("API_KEYS", "tiny")
    monkeypatch.setenv("S3_ENDPOINT", "ftp://x")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    for name in ("POSTGRES_PORT", "KAFKA_BOOTSTRAP", "API_KEYS", "S3_ENDPOINT"):
        assert name in message
    assert "tiny" not in message


@pytest.mark.parametrize(
    ("ttl", "expires", "valid"),
    [(300, 3600, True), (1800, 3600, True), (1801, 3600, False), (600, 300, False)],
)
def test_cached_searches_cannot_outlive_their_links(
    monkeypatch: pytest.MonkeyPatch, ttl: int, expires: int, valid: bool
) -> None:
    """A cached answer is handed out up to SEARCH_CACHE_TTL_S after its links were signed."""
    monkeypatch.setenv("SEARCH_CACHE_TTL_S", str(ttl))
    monkeypatch.setenv("SEARCH_URL_EXPIRES_S", str(expires))
    if valid:
        assert load_settings().search.cache_ttl_s == ttl
        return
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "SEARCH_CACHE_TTL_S" in str(info.value) and "SEARCH_URL_EXPIRES_S" in str(info.value)


@pytest.mark.parametrize(("strict", "valid"), [("0.3", True), ("0.6", True), ("0.29", False)])
def test_lenders_must_be_at_least_as_sure_as_any_search(
    monkeypatch: pytest.MonkeyPatch, strict: str, valid: bool
) -> None:
    """SEARCH_EXPANSION_THRESHOLD under SEARCH_MIN_THRESHOLD could never apply (a search at a
    higher threshold uses its own): refused."""
    monkeypatch.setenv("SEARCH_MIN_THRESHOLD", "0.3")
    monkeypatch.setenv("SEARCH_EXPANSION_THRESHOLD", strict)
    if valid:
        assert load_settings().search.expansion_threshold == float(strict)
        return
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "SEARCH_EXPANSION_THRESHOLD" in str(info.value) and "SEARCH_MIN_THRESHOLD" in str(
        info.value
    )


def test_query_expansion_ships_on_and_the_selfie_flip_off() -> None:
    """What the multi-draw calibration chose (docs/faces.md, "Accuracy switches"): expansion
    gains recall at the same worst-draw precision; the flip's extra gain is not worth its
    recogniser pass."""
    settings = load_settings()
    assert settings.face.selfie_flip is False and settings.search.query_expansion is True
    assert (settings.search.expansion_threshold, settings.search.expansion_faces) == (0.6, 5)


def test_secrets_do_not_appear_in_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", "hunter2-hunter2")
    monkeypatch.setenv("API_KEYS", "key-abcdefgh-123")
    monkeypatch.setenv("S3_SECRET_KEY", "s3-secret-value")
    text = repr(load_settings()) + str(load_settings().model_dump())
    for secret in ("hunter2-hunter2", "key-abcdefgh-123", "s3-secret-value"):
        assert secret not in text


def test_empty_values_mean_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACE_SIMILARITY_THRESHOLD", "")
    monkeypatch.setenv("REDIS_PASSWORD", "")
    monkeypatch.setenv("FACE_MODEL_DIR", "")
    settings = load_settings()
    assert settings.face.similarity_threshold is None
    assert settings.redis.password is None
    assert settings.face.model_dir is None


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("POSTGRES_PORT=6543\nKAFKA_PARTITIONS=3\n")
    settings = load_settings()
    assert settings.postgres.port == 6543
    assert settings.kafka.partitions == 3


def test_env_example_lists_every_setting() -> None:
    text = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert listed == _all_env_names()


def test_env_example_is_valid_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text((REPO / ".env.example").read_text())
    settings = load_settings()
    assert settings.postgres.port == 5432
    assert settings.kafka.bootstrap == "127.0.0.1:9092"


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
     ("db_vector", False), ("10.0.0.5", False), ("s3.example.com", False)],
)  # fmt: skip
def test_loopback_detection(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected
