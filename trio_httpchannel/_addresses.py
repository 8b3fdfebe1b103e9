"""The socket addresses of a connection, found under any stream wrappers, and how they print."""

from __future__ import annotations

import sys

import trio

from ._request import Address

__all__ = ["addresses", "format_address", "peer_name"]


def addresses(stream: trio.abc.Stream) -> tuple[str, Address, Address]:
    """The scheme and the socket's two addresses (``None`` for a stream without a socket). A
    wrapper with ``proxied_addresses`` (the PROXY protocol's, see ``server/proxy_protocol.py``)
    gives them instead of the socket, and says whether the client spoke TLS to the balancer."""
    scheme = "http"
    while True:
        if isinstance(stream, trio.SSLStream):
            scheme = "https"
        proxied = getattr(stream, "proxied_addresses", None)
        if proxied is not None:
            tls, client, server = proxied
            return ("https" if tls else scheme), client, server
        inner = getattr(stream, "transport_stream", None)
        if inner is None:
            break
        stream = inner
    sock = getattr(stream, "socket", None)
    if sock is None:
        return scheme, None, None
    try:
        return scheme, _address(sock.getpeername()), _shared(_address(sock.getsockname()))
    except OSError:
        return scheme, None, None


def _address(raw: object) -> Address:
    if isinstance(raw, tuple):
        host, port = raw[:2]
        return (sys.intern(host), port) if isinstance(host, str) else (host, port)
    if isinstance(raw, (str, bytes)):
        return raw.decode() if isinstance(raw, bytes) else raw
    return None


def _shared(address: Address) -> Address:
    """One object for each of the server's own addresses, which every connection to it has
    (connections are kept for as long as they are idle; the clients' hosts are interned)."""
    known = _known_addresses.get(address)
    if known is None:
        if len(_known_addresses) >= _KNOWN_LIMIT:
            _known_addresses.clear()
        known = _known_addresses[address] = address
    return known


_KNOWN_LIMIT = 64
_known_addresses: dict[Address, Address] = {}


def format_address(address: Address) -> str:
    """``host:port`` (``[v6 host]:port``), a Unix socket's path, or ``-`` when unknown."""
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return address or "-"


def peer_name(address: Address) -> str:
    """A client's address as log messages name it: ``host:port``, or ``an unknown peer``."""
    return format_address(address) if address is not None else "an unknown peer"
