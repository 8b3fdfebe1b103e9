"""The exceptions of trio-httpchannel."""

from __future__ import annotations

__all__ = ["ClientDisconnected", "ProtocolError"]


class ProtocolError(Exception):
    """A client broke HTTP/1.1 or one of the channel's limits.

    ``status`` is the answer it gets (400, 408, 413, 414, 431, 501, 505, ...); the connection
    closes after it. A handler sees this exception when it reads a request body that turns out
    malformed, too large or too slow: letting it propagate sends exactly that answer, and so
    does anything else the handler returns after it (a body that failed is never answered as
    if it had been whole).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ClientDisconnected(OSError):
    """What the application sends can no longer reach the client: the request's body failed
    and its client got the body's error status instead, the client left in the middle of the
    request body, or the connection closed before the body was complete.

    The ASGI adapter raises it from ``send()`` (ASGI HTTP spec 2.4: sending on a closed
    connection raises a server-specific ``OSError`` subclass); a request body being read raises
    it when the connection ends under it. An app may catch it to stop early; letting it
    propagate is normal and is not logged as an error.
    """
