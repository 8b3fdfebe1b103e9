"""The opening of a TLS connection: plain HTTP told apart from a TLS client before the
handshake (so that it can be answered instead of failing the handshake), then the handshake,
all of it within ``header_timeout``, and whatever goes wrong one debug line."""

from __future__ import annotations

import enum
import logging
import re
import socket

import trio

from ._addresses import addresses, peer_name

__all__ = ["Opening", "first_bytes", "open_tls"]

logger = logging.getLogger("trio_httpchannel")

PLAIN_HTTP_MESSAGE = "this port speaks HTTPS: use an https:// URL"
"""The body of the ``400`` to plain HTTP on a TLS port (after ``400 Bad Request: ``)."""

_PEEK_SIZE = 64
_PLAIN_HTTP = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?: |\Z)")
"""The start of a request line (a method, then a space), or of a method cut short: what a TLS
record, starting with its content type (22 for a handshake), never is."""


class Opening(enum.Enum):
    """How a TLS connection opened."""

    SECURE = "the handshake is done"
    PLAIN_HTTP = "the client speaks plain HTTP: answer it 400"
    FAILED = "the handshake failed or stalled, or the client left: close the connection"


async def open_tls(stream: trio.SSLStream[trio.abc.Stream], timeout: float) -> Opening:
    """Open ``stream``: look at the client's first bytes without reading them (when its
    transport can, see :func:`first_bytes`), and if they begin an HTTP request line tell the
    caller, else do the TLS handshake; within ``timeout`` seconds from the start (a TLS
    client sends its hello at once, so a client silent that long is gone or hostile). A
    failure is logged at debug level, with OpenSSL's reason; the caller closes the stream. A
    stream already through its handshake is left as it is."""
    if _handshake_done(stream):
        return Opening.SECURE
    peer = peer_name(addresses(stream)[1])
    with trio.move_on_after(timeout):
        try:
            first = await first_bytes(stream.transport_stream)
            if first is not None and _PLAIN_HTTP.match(first):
                logger.debug("plain HTTP from %s on a TLS port: answering 400", peer)
                return Opening.PLAIN_HTTP
            if first == b"":
                return Opening.FAILED
            await stream.do_handshake()
            return Opening.SECURE
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            logger.debug("TLS handshake with %s failed: %s", peer, error.__cause__ or error)
            return Opening.FAILED
    logger.debug("TLS handshake with %s not done within %gs: closing", peer, timeout)
    return Opening.FAILED


def _handshake_done(stream: trio.SSLStream[trio.abc.Stream]) -> bool:
    try:
        stream.version()
    except trio.NeedHandshakeError:
        return False
    return True


async def first_bytes(stream: trio.abc.Stream) -> bytes | None:
    """The first bytes the client sent on ``stream``, left unread, waiting for them: peeked at
    on a ``trio.SocketStream``, asked of a wrapper with a ``peek()`` coroutine (the PROXY
    protocol's ``ProxiedStream``); ``None`` on any other stream, ``b""`` when the client left."""
    if isinstance(stream, trio.SocketStream):
        return await stream.socket.recv(_PEEK_SIZE, socket.MSG_PEEK)
    peek = getattr(stream, "peek", None)
    if peek is None:
        return None
    data: bytes | None = await peek()
    return data
