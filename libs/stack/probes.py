"""Wire-level checks that a server really serves, beyond an open port: the readiness probes of
the embedded stack (see servers.py for why each server needs its own)."""

from __future__ import annotations

import json
import socket
import struct
import urllib.request


def kafka_metadata_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """Send a Kafka Metadata request (v0, all topics); True if the answer carries our id."""
    client_id = b"facepass-stack"
    correlation_id = 0x0FAC
    # request header v1 (api key 3 = Metadata, version 0, correlation id, client id), then an
    # empty topic array (v0: all topics)
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">i", 0)
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(struct.pack(">i", len(body)) + body)
            answer = b""
            while len(answer) < 8 and (chunk := conn.recv(8 - len(answer))):
                answer += chunk
    except OSError:
        return False
    return len(answer) == 8 and struct.unpack(">ii", answer)[1] == correlation_id


def seaweedfs_registered_volumes(host: str, master_port: int) -> set[int]:
    """Volume ids the SeaweedFS master has heard of from its volume servers (empty if the
    master does not answer)."""
    url = f"http://{host}:{master_port}/vol/status"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status = json.load(response)
    except (OSError, ValueError):
        return set()
    # {"Volumes": {"DataCenters": {dc: {rack: {node: [{"Id": 1, ...}, ...]}}}}}
    centres = status.get("Volumes", {}).get("DataCenters", {}).values()
    racks = (rack for centre in centres for rack in centre.values())
    return {volume["Id"] for rack in racks for node in rack.values() for volume in node}
