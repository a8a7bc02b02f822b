"""Readiness checks of the embedded servers, against plain sockets and files (no servers)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from libs.common.settings import Settings
from libs.stack.servers import S3Server, kafka_metadata_answers

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
