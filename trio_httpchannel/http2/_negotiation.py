"""How a connection says it speaks HTTP/2: ALPN ``h2`` under TLS, or the preface in cleartext
(prior knowledge, RFC 9113 sections 3.2 and 3.3)."""

from __future__ import annotations

import trio

__all__ = ["ALPN_PROTOCOLS", "PREFACE", "opening"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""What an HTTP/2 client sends first; to an HTTP/1.1 parser, a request with version 2.0."""

ALPN_PROTOCOLS = ["h2", "http/1.1"]
"""What a TLS server offers when it serves HTTP/2, best first."""

_RECEIVE_SIZE = 65536


async def opening(stream: trio.abc.Stream, timeout: float) -> tuple[bool, bytes] | None:
    """Whether the client on ``stream`` speaks HTTP/2, and the bytes read to find out (they
    belong to whichever protocol serves the connection); ``None`` when the client left, or said
    nothing within ``timeout`` seconds.

    Under TLS the handshake decides (ALPN) and nothing is read. In cleartext the first bytes
    are read until they either are the preface or cannot become it, which for HTTP/1.1 is the
    first read (no request starts with ``PRI *``)."""
    with trio.move_on_after(timeout):
        try:
            if isinstance(stream, trio.SSLStream):
                await stream.do_handshake()
                return stream.selected_alpn_protocol() == "h2", b""
            received = b""
            while PREFACE.startswith(received) and len(received) < len(PREFACE):
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    return (False, received) if received else None
                received += data
            return received.startswith(PREFACE), received
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return None
    return None
