"""Readiness checks of the embedded servers, against plain sockets and files (no servers)."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from libs.common.settings import Settings
from libs.stack.probes import kafka_metadata_answers, seaweedfs_registered_volumes
from libs.stack.servers import S3Server

Handler = Callable[[socket.socket], None]
Listen = Callable[[Handler], int]


@pytest.fixture
def listener() -> Iterator[Listen]:
    """Serve one connection on a free port with the given handler; yields a starter."""
    sockets: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def start(handle: Handler) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        sockets.append(server)

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                handle(conn)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        port: int = server.getsockname()[1]
        return port

    yield start
    for server in sockets:
        server.close()
    for thread in threads:
        thread.join(timeout=2)


def _read_request(conn: socket.socket) -> bytes:
    size = struct.unpack(">i", conn.recv(4))[0]
    return conn.recv(size)


def test_a_closed_port_is_not_a_ready_broker() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    assert not kafka_metadata_answers("127.0.0.1", port, timeout=0.5)


def test_a_broker_that_accepts_then_closes_is_not_ready(listener: Listen) -> None:
    """What tansu does when it cannot read its state from S3: the port is open, no answer."""
    port = listener(lambda conn: _read_request(conn))
    assert not kafka_metadata_answers("127.0.0.1", port)


def test_a_metadata_answer_with_our_correlation_id_is_ready(listener: Listen) -> None:
    seen: list[tuple[int, int]] = []

    def answer(conn: socket.socket) -> None:
        request = _read_request(conn)
        api_key, version, correlation_id = struct.unpack(">hhi", request[:8])
        seen.append((api_key, version))
        body = struct.pack(">i", correlation_id) + struct.pack(">ii", 0, 0)
        conn.sendall(struct.pack(">i", len(body)) + body)

    port = listener(answer)
    assert kafka_metadata_answers("127.0.0.1", port)
    assert seen == [(3, 0)]  # Metadata v0


def test_an_answer_to_another_request_is_not_ready(listener: Listen) -> None:
    def answer(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(struct.pack(">ii", 4, 12345))

    assert not kafka_metadata_answers("127.0.0.1", listener(answer))


def test_s3_volume_ids_are_read_from_the_data_files(tmp_path: Path) -> None:
    data = tmp_path / "s3"
    data.mkdir()
    for name in ["3.dat", "facepass-kafka_1.dat", "my_bucket_12.dat", "7.idx", "notes.dat"]:
        (data / name).touch()
    server = S3Server(Settings(), tmp_path)
    assert server._volumes_on_disk() == {1, 3, 12}


def test_the_volumes_the_seaweedfs_master_knows_are_read_from_its_status(
    listener: Listen,
) -> None:
    status = {
        "Version": "8000GB 4.48",
        "Volumes": {
            "DataCenters": {
                "DefaultDataCenter": {
                    "DefaultRack": {
                        "127.0.0.1:8335": [{"Id": 1, "Collection": "a"}, {"Id": 3}],
                        "127.0.0.1:9335": [{"Id": 7}],
                    }
                }
            },
            "Free": 0,
        },
    }

    def answer(conn: socket.socket) -> None:
        assert conn.recv(4096).startswith(b"GET /vol/status ")
        body = json.dumps(status).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode() + body)

    assert seaweedfs_registered_volumes("127.0.0.1", listener(answer)) == {1, 3, 7}


def test_a_master_that_does_not_answer_knows_no_volume() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    assert seaweedfs_registered_volumes("127.0.0.1", port) == set()
