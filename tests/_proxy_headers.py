"""PROXY protocol version 2 headers as a balancer writes them, built with ``struct`` from the
specification's layout (HAProxy and nginx send real ones in ``tests/test_balancers.py``)."""

from __future__ import annotations

import ipaddress
import struct

from trio_httpchannel.server.proxy_parser import V2_SIGNATURE


def v2(command: int = 1, family: int = 1, transport: int = 1, payload: bytes = b"", version: int = 2) -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", version << 4 | command, family << 4 | transport, len(payload)) + payload


def inet(client: str = "203.0.113.7", server: str = "198.51.100.1", ports: tuple[int, int] = (51000, 443)) -> bytes:
    """The addresses of a ``v2`` payload for the INET family."""
    addresses: bytes = ipaddress.ip_address(client).packed + ipaddress.ip_address(server).packed
    return addresses + struct.pack("!HH", *ports)


def tlv(kind: int, value: bytes) -> bytes:
    """One type-length-value field of a ``v2`` payload."""
    return struct.pack("!BH", kind, len(value)) + value
