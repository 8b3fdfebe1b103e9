"""Where a connection comes from: its scheme and its socket's two addresses, for any protocol."""

from __future__ import annotations

import trio

from ._request import Address

__all__ = ["addresses"]


def addresses(stream: trio.abc.Stream) -> tuple[str, Address, Address]:
    """The scheme (``https`` under TLS) and the peer's and our socket addresses, found under
    any stream wrappers; the addresses are ``None`` for a stream without a socket."""
    scheme = "http"
    while True:
        if isinstance(stream, trio.SSLStream):
            scheme = "https"
        inner = getattr(stream, "transport_stream", None)
        if inner is None:
            break
        stream = inner
    sock = getattr(stream, "socket", None)
    if sock is None:
        return scheme, None, None
    try:
        return scheme, _address(sock.getpeername()), _address(sock.getsockname())
    except OSError:
        return scheme, None, None


def _address(raw: object) -> Address:
    if isinstance(raw, tuple):
        return raw[:2]
    if isinstance(raw, (str, bytes)):
        return raw.decode() if isinstance(raw, bytes) else raw
    return None
