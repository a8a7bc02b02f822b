"""Private stacks: free ports, their settings, and the environment a child process gets."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from libs.common.settings import load_settings
from libs.stack.private import PortPicker, private_stack_settings, settings_env


def test_ports_are_distinct_free_and_below_the_ephemeral_range() -> None:
    picker = PortPicker(seed=3)
    ports = [picker.port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(10_000 <= p < 32_768 for p in ports)
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # raises if it was not free


def test_an_s3_port_leaves_seaweedfs_every_port_it_binds() -> None:
    picker = PortPicker(seed=5)
    s3 = picker.s3_port()
    bound = {p + grpc for p in range(s3, s3 + 5) for grpc in (0, 10_000)}
    assert max(bound) < 32_768
    assert not bound & {picker.port() for _ in range(200)}


def test_private_settings_point_every_server_at_loopback(tmp_path: Path) -> None:
    settings = private_stack_settings(
        tmp_path, bucket="b-test", kafka_partitions=3, postgres_password="pw-123", seed=1
    )
    ports = {
        settings.postgres.port,
        settings.redis.port,
        settings.s3.port,
        settings.kafka.first_port,
    }
    assert len(ports) == 4
    assert {settings.postgres.host, settings.redis.host, settings.s3.host} == {"127.0.0.1"}
    assert settings.kafka.first_host == "127.0.0.1"
    assert settings.kafka.partitions == 3
    assert settings.postgres.password.get_secret_value() == "pw-123"
    assert settings.s3.bucket == "b-test"
    assert settings.stack.state_dir == tmp_path


def test_a_child_reading_settings_env_finds_the_same_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = private_stack_settings(tmp_path, bucket="b-child", kafka_partitions=2, seed=2)
    kafka = parent.kafka.model_copy(update={"topic_uploaded": "own.topic", "consumer_group": "g"})
    parent = parent.model_copy(update={"kafka": kafka})
    # The parent's own stack settings must not leak through to the child.
    monkeypatch.setenv("POSTGRES_PORT", "1")
    monkeypatch.setenv("SEARCH_DEFAULT_LIMIT", "7")
    env = settings_env(parent, API_KEYS="child-key-123")
    assert "SEARCH_DEFAULT_LIMIT" not in env
    # The child sees exactly `env` (and no .env file).
    monkeypatch.chdir(tmp_path)
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = load_settings()
    assert child.postgres == parent.postgres
    assert child.redis.port == parent.redis.port
    assert child.s3.endpoint == parent.s3.endpoint and child.s3.bucket == "b-child"
    assert child.kafka == parent.kafka
    assert child.stack.state_dir == parent.stack.state_dir
    assert [k.get_secret_value() for k in child.app.api_keys] == ["child-key-123"]
