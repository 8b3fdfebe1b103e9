"""The exceptions of trio-httpchannel."""

from __future__ import annotations

__all__ = ["ProtocolError"]


class ProtocolError(Exception):
    """A client broke HTTP/1.1 or one of the channel's limits.

    ``status`` is the answer it gets (400, 408, 413, 414, 431, 501, 505, ...); the connection
    closes after it. A handler sees this exception when it reads a request body that turns out
    malformed, too large or too slow: letting it propagate sends exactly that answer.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
