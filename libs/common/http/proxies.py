"""Whose address a request comes from: the peer, or what trusted proxies say it is.

Only TRUSTED_PROXIES may vouch for a client: X-Forwarded-For from any other peer is ignored
(uvicorn's own proxy-header handling is off in `facepass serve` for the same reason). Used by
the per-IP rate limit and the access log, so both see the same address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence


def resolve_client(peer: str, forwarded_for: str, trusted: Sequence[str]) -> str:
    """The caller's address: the peer, or, behind trusted proxies, the nearest untrusted hop
    of X-Forwarded-For."""
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    if not networks or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return peer
