"""How a WebSocket's opening handshake is answered, by what carries it: :class:`Opening`.

Over HTTP/1.1 (:class:`UpgradeOpening`) the answer is a ``101`` on the connection, which then
carries the WebSocket's frames, or a refusal after which the connection closes. Over HTTP/2
(RFC 8441, ``http2/_websocket.py``) it is a ``200`` on the stream of an extended CONNECT, whose
DATA then carries the frames, or an ordinary response on that stream. The native API
(:class:`WebSocketRequest`) and the session are the same over both.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import trio

from .._config import Settings
from .._response import Response
from ._handshake import Handshake, Negotiated
from ._http import linger, refusal_bytes, send_head

__all__ = ["Opened", "Opening", "UpgradeOpening"]


class Opened(NamedTuple):
    """An accepted WebSocket: the stream its frames ride (the session's, which closes it), the
    bytes the client sent before the acceptance (its first frames), and the bytes of the
    acceptance written."""

    stream: trio.abc.Stream
    trailing_data: bytes
    head_sent: int


class Opening(Protocol):
    """The answer to one opening handshake, given once: :meth:`accept` or :meth:`reject`.

    Each raises ``ValueError`` (or ``TypeError``) for an answer that cannot be sent *before* its
    first checkpoint, so a caller may mark the handshake answered first and undo that on the
    error (no other task can have seen it)."""

    accept_status: int
    """The status of the acceptance: ``101``, or ``200`` over HTTP/2."""

    async def accept(self, handshake: Handshake, negotiated: Negotiated) -> Opened | None:
        """Send the acceptance of ``handshake`` as ``negotiated``; ``None`` when the client is
        gone (it did not take it within ``send_timeout``, or it left)."""
        ...

    async def reject(self, response: Response) -> int | None:
        """Send ``response`` (its body bytes) refusing the WebSocket; the bytes written, ``None``
        when the client did not take it."""
        ...

    async def after_refusal(self) -> None:
        """The handler is done with a refused WebSocket: end what carried it."""
        ...


class UpgradeOpening:
    """The answer on an HTTP/1.1 connection whose request asked ``Upgrade: websocket``:
    ``trailing_data`` are the bytes read after the request's head."""

    __slots__ = ("_settings", "_stream", "_trailing_data")

    accept_status = 101

    def __init__(self, stream: trio.abc.Stream, trailing_data: bytes, settings: Settings) -> None:
        self._stream = stream
        self._trailing_data = trailing_data
        self._settings = settings

    async def accept(self, handshake: Handshake, negotiated: Negotiated) -> Opened | None:
        head = handshake.switching_head(negotiated)
        if not await send_head(self._stream, head, self._settings):
            return None
        return Opened(self._stream, self._trailing_data, len(head))

    async def reject(self, response: Response) -> int | None:
        data = refusal_bytes(response)
        return len(data) if await send_head(self._stream, data, self._settings) else None

    async def after_refusal(self) -> None:
        """A refusal closes the connection: the lingering close (the caller then closes it)."""
        await linger(self._stream, self._settings)
