"""How a connection says it speaks HTTP/2: ALPN ``h2`` under TLS, or the preface in cleartext
(prior knowledge, RFC 9113 sections 3.2 and 3.3)."""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Sequence

import h2.exceptions
import trio
from h2.config import H2Configuration
from h2.connection import H2Connection
from hyperframe.exceptions import InvalidFrameError

__all__ = ["ALPN_PROTOCOLS", "PREFACE", "Spoken", "opening", "refusal_opening"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""What an HTTP/2 client sends first; to an HTTP/1.1 parser, a request with version 2.0."""

ALPN_PROTOCOLS = ["h2", "http/1.1"]
"""What a TLS server offers when it serves HTTP/2, best first."""

SWITCHING_PROTOCOLS = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
"""The answer to a request upgraded to HTTP/2 in cleartext, before the server's preface."""

_RECEIVE_SIZE = 65536


class Spoken(enum.Enum):
    """What the first bytes of a connection say."""

    HTTP1 = "not the preface: HTTP/1.1 goes on with the bytes read"
    HTTP2 = "the preface (or ALPN h2 under TLS)"
    STALLED = "bytes that could still begin the preface, and no more of them within header_timeout"


async def opening(
    stream: trio.abc.Stream, timeout: float, header_timeout: float = math.inf
) -> tuple[Spoken, bytes] | None:
    """What the client on ``stream`` speaks, and the bytes read to find out (they belong to
    whichever protocol serves the connection); ``None`` when the client left, or said nothing
    within ``timeout`` seconds. Once its first bytes have come, the rest of them (a request
    split after its ``P``, say) get ``header_timeout`` from the first, as a request head does in
    HTTP/1.1, instead of what is left of ``timeout``; bytes that still could begin the preface
    then are ``STALLED``, which the caller answers as HTTP/1.1 answers a head that did not
    arrive in time (408): every such prefix (``PRI * HTTP/2.0``...) is also the start of an
    HTTP/1.1 request line, and that is what a server without HTTP/2 would answer.

    Under TLS the handshake decides (ALPN) and nothing is read. In cleartext the first bytes
    are read until they either are the preface or cannot become it, which for HTTP/1.1 is the
    first read (no request starts with ``PRI *``). On a socket whose client has already sent
    them (the common case) they are read at once, without a timer: a cancel scope with a
    deadline, once left, stays in trio's deadline heap until the deadline passes, and would
    cost every idle connection a few hundred bytes."""
    received = _ready(stream)
    if received == b"":
        return None
    if received is not None and not (PREFACE.startswith(received) and len(received) < len(PREFACE)):
        return (Spoken.HTTP2 if received.startswith(PREFACE) else Spoken.HTTP1), received
    with trio.move_on_after(timeout) as scope:
        try:
            if isinstance(stream, trio.SSLStream):
                await stream.do_handshake()
                return (Spoken.HTTP2 if stream.selected_alpn_protocol() == "h2" else Spoken.HTTP1), b""
            if received:
                scope.deadline = trio.current_time() + header_timeout
            received = received or b""
            while PREFACE.startswith(received) and len(received) < len(PREFACE):
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    return (Spoken.HTTP1, received) if received else None
                if not received:
                    scope.deadline = trio.current_time() + header_timeout
                received += data
            return (Spoken.HTTP2 if received.startswith(PREFACE) else Spoken.HTTP1), received
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return None
    return (Spoken.STALLED, received) if received else None


async def refusal_opening(stream: trio.abc.Stream, linger: float) -> tuple[Spoken, bytes] | None:
    """What a cleartext client refused at once (the server at its connection limit) speaks,
    found within ``linger`` seconds in all, the refusal's own bound (no request is served, so no
    other timer applies): ``HTTP2`` once its bytes begin with the preface, ``HTTP1`` once they
    cannot (or it stopped sending partway: every prefix of the preface also begins an HTTP/1.1
    request line), with the bytes read; ``None`` when it left, or had not said which within
    ``linger``. Unlike :func:`opening`, every client waits on a timer: a refusal is short-lived."""
    received = b""
    with trio.move_on_after(linger):
        try:
            while PREFACE.startswith(received) and len(received) < len(PREFACE):
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    return (Spoken.HTTP1, received) if received else None
                received += data
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return None
        return (Spoken.HTTP2 if received.startswith(PREFACE) else Spoken.HTTP1), received
    return None


def _ready(stream: trio.abc.Stream) -> bytes | None:
    """The bytes a plain socket has for us now, without waiting (``b""``: the client left);
    ``None`` when it has none yet, or is no plain socket."""
    if type(stream) is not trio.SocketStream or os.name != "posix":
        return None
    try:
        data = os.read(stream.socket.fileno(), _RECEIVE_SIZE)
    except OSError:  # BlockingIOError: nothing yet; another error: the wait that follows says it
        return None
    return data


def h2c_settings(fields: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The ``HTTP2-Settings`` value of an HTTP/1.1 request asking to go on in HTTP/2 in cleartext
    (``Upgrade: h2c``, RFC 7540 section 3.2; ``Connection`` naming both), ``None`` for any
    other request. Only a request without a body is upgraded (the caller checks): its body
    would have to arrive in HTTP/1.1 while the answer comes in HTTP/2."""
    upgrade = _tokens(fields, b"upgrade")
    connection = _tokens(fields, b"connection")
    settings = [value for name, value in fields if name == b"http2-settings"]
    if b"h2c" not in upgrade or not {b"upgrade", b"http2-settings"} <= connection or len(settings) != 1:
        return None
    value = settings[0].strip()
    value += b"=" * (-len(value) % 4)
    try:
        H2Connection(H2Configuration(client_side=False)).initiate_upgrade_connection(value)
    except (ValueError, h2.exceptions.ProtocolError, InvalidFrameError):
        return None  # settings h2 refuses: the request is served in HTTP/1.1, as if not asked
    return value


def _tokens(fields: Sequence[tuple[bytes, bytes]], name: bytes) -> set[bytes]:
    return {token.strip().lower() for field, value in fields if field == name for token in value.split(b",")}
