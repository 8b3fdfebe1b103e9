"""The native WebSocket API, shaped after trio-websocket's.

A WebSocket handler is called with a :class:`WebSocketRequest` and either accepts it, getting a
:class:`WebSocket`, or rejects it with an HTTP :class:`~trio_httpchannel.Response`::

    async def chat(request: WebSocketRequest) -> None:
        if request.path != "/chat":
            await request.reject(Response(404))
            return
        ws = await request.accept(subprotocol="chat.v1" if "chat.v1" in request.subprotocols else None)
        async for message in ws:
            await ws.send(message)

    HTTPChannel(http_handler, websocket_handler=chat)

When the handler returns the WebSocket is closed with 1000; when it raises, with 1011 (before
accepting: a ``500``). One that returns without deciding gets its client a ``500`` too.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import trio

from .._access import ResponseRecord
from .._config import Settings
from .._headers import Headers
from .._request import Address, Request
from .._response import HeaderPairs, Response
from ._errors import CloseReason, ConnectionClosed
from ._going_away import OpenWebSockets
from ._handshake import Handshake
from ._opening import Opening
from ._protocol import Data, WebSocketProtocol
from ._session import Session

__all__ = ["WebSocket", "WebSocketHandler", "WebSocketRequest"]

WebSocketHandler = Callable[["WebSocketRequest"], Awaitable[None]]

logger = logging.getLogger("trio_httpchannel.websocket")


class _Decision(enum.Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class WebSocketRequest:
    """A valid request to open a WebSocket, before the handler decides on it.

    ``request`` is the HTTP request itself (over HTTP/2 an extended CONNECT, RFC 8441, whose
    ``http_version`` is ``"2"``); ``path``, ``query``, ``headers``, ``client`` and ``server`` are
    its own. ``subprotocols`` are those the client offered, in its order of preference. Accept or
    reject it once; ``opening`` sends the answer, in whichever protocol the request came.
    """

    __slots__ = (
        "_answered_at",
        "_decision",
        "_handshake",
        "_head_sent",
        "_nursery",
        "_open_websockets",
        "_opening",
        "_settings",
        "_status",
        "_websocket",
        "_written",
        "request",
        "subprotocols",
    )

    def __init__(
        self,
        request: Request,
        handshake: Handshake,
        opening: Opening,
        settings: Settings,
        nursery: trio.Nursery,
        open_websockets: OpenWebSockets | None = None,
    ) -> None:
        self.request = request
        self.subprotocols = handshake.subprotocols
        self._handshake = handshake
        self._opening = opening
        self._settings = settings
        self._nursery = nursery
        self._open_websockets = open_websockets
        self._decision = _Decision.PENDING
        self._websocket: WebSocket | None = None
        self._status = 0
        self._head_sent = 0
        self._written = False
        self._answered_at = 0.0

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def query(self) -> str:
        return self.request.query

    @property
    def headers(self) -> Headers:
        return self.request.headers

    @property
    def scheme(self) -> str:
        """``ws``, or ``wss`` over TLS."""
        return "wss" if self.request.scheme == "https" else "ws"

    @property
    def client(self) -> Address:
        return self.request.client

    @property
    def server(self) -> Address:
        return self.request.server

    async def accept(self, subprotocol: str | None = None, headers: HeaderPairs = ()) -> WebSocket:
        """Send the acceptance (``101``, or ``200`` over HTTP/2) and open the WebSocket,
        speaking ``subprotocol`` (one the client offered) and with the extra response
        ``headers``. Raises ``ValueError`` for a subprotocol not offered or a header the
        handshake sets itself, :class:`ConnectionClosed` when the client is gone."""
        self._require_pending()
        settings = self._settings
        negotiated = self._handshake.negotiate(
            subprotocol=subprotocol,
            headers=headers,
            per_message_deflate=settings.ws_per_message_deflate,
            max_size=settings.ws_max_size,
        )
        self._decision = _Decision.ACCEPTED
        self._status = self._opening.accept_status
        try:
            opened = await self._opening.accept(self._handshake, negotiated)
        except (ValueError, TypeError):
            self._decision = _Decision.PENDING  # raised before anything was sent (see Opening)
            raise
        if opened is None:
            raise ConnectionClosed(CloseReason(1006, "the client did not take the handshake's response"))
        self._head_sent = opened.head_sent
        self._written = True
        protocol = WebSocketProtocol(negotiated.extensions, settings.ws_max_size, opened.trailing_data)
        session = Session(opened.stream, protocol, settings, self._open_websockets, self._nursery)
        self._nursery.start_soon(session.run)
        self._websocket = WebSocket(self, session, subprotocol)
        return self._websocket

    async def reject(self, response: Response) -> None:
        """Refuse the WebSocket with ``response`` (its body bytes, not a stream); it returns once
        the response is written. Over HTTP/1.1 the connection closes after the handler returns;
        over HTTP/2 the response ends the request's stream, and the connection goes on."""
        self._require_pending()
        self._decision = _Decision.REJECTED
        self._status = response.status
        try:
            written = await self._opening.reject(response)
        except (ValueError, TypeError):
            self._decision = _Decision.PENDING  # raised before anything was sent (see Opening)
            raise
        if written is not None:
            self._head_sent = written
            self._written = True
        self._answered_at = trio.current_time()

    @property
    def _rejected(self) -> bool:
        return self._decision is _Decision.REJECTED

    async def _finish(self, failed: bool) -> None:
        """The handler is done: answer a handshake it left undecided with a ``500``, close an
        open WebSocket with 1011 if it ``failed``, else 1000."""
        if self._decision is _Decision.PENDING:
            if not failed:
                logger.error("the WebSocket handler returned without accepting or rejecting %r", self)
            await self.reject(
                Response(500, [("content-type", "text/plain; charset=utf-8")], b"500 Internal Server Error\n")
            )
        elif self._websocket is not None:
            if failed:
                await self._websocket.close(1011, "internal error", wait=False)
            else:
                await self._websocket.close(1000, wait=False)

    def _record(self, client: Address, started: float) -> ResponseRecord | None:
        """The access record of what answered this request, ``None`` if nothing did. A refusal
        is recorded as the HTTP response it is; an accepted WebSocket with its acceptance's
        status (101, or 200 over HTTP/2) whose ``sent`` is every byte written for it (the ``101``
        head, and all frames), whose ``seconds`` run to the end of the WebSocket, and which is
        ``complete`` when our close frame was written (not when the connection was lost or
        aborted first). (Over HTTP/2 the bytes are the body's, as for any HTTP/2 response.)"""
        if self._decision is _Decision.PENDING:
            return None
        if self._websocket is None:
            ended = self._answered_at if self._rejected else trio.current_time()
            return ResponseRecord(client, self.request, self._status, self._head_sent, ended - started, self._written)
        session = self._websocket._session
        sent = self._head_sent + session.sent
        seconds = trio.current_time() - started
        return ResponseRecord(client, self.request, self._status, sent, seconds, session.close_written)

    def _require_pending(self) -> None:
        if self._decision is not _Decision.PENDING:
            raise RuntimeError(f"this WebSocket request was already {self._decision.value}")

    def __repr__(self) -> str:
        return f"<WebSocketRequest {self.request.target}>"


class WebSocket:
    """An open WebSocket. ``subprotocol`` is the one accepted (or ``None``).

    ``receive`` gives whole messages (``str`` for text, ``bytes`` for binary) and raises
    :class:`ConnectionClosed` after the last one; ``async for message in ws`` ends there instead.
    ``send`` returns once the connection's writer has taken the message, so a client that reads
    slowly slows the sender. Every call may be cancelled without harm to the connection: a frame
    is handed to the writer whole or not at all, and ``close`` finishes even when cancelled.
    """

    __slots__ = ("_session", "request", "subprotocol")

    def __init__(self, request: WebSocketRequest, session: Session, subprotocol: str | None) -> None:
        self.request = request
        self.subprotocol = subprotocol
        self._session = session

    @property
    def closed(self) -> CloseReason | None:
        """Why the WebSocket ended (``None`` while it is open): the client's close code (1005
        when it gave none), the code we failed it with, or 1006 when the connection was lost."""
        return self._session.close_reason

    def receive(self) -> Coroutine[Any, Any, Data]:
        """The next message, to await. (The session's own coroutine, returned as it is: the
        handler of an idle WebSocket waits in it, and holds no frame of this method's.)"""
        return self._session.receive()

    async def send(self, message: Data) -> None:
        """Send ``message``: text for ``str``, binary for ``bytes``."""
        await self._session.send(message)

    async def ping(self, payload: bytes | None = None) -> None:
        """Ping the client and wait for its pong."""
        await self._session.ping(payload)

    async def close(self, code: int = 1000, reason: str = "", *, wait: bool = True) -> None:
        """Close with ``code`` and ``reason``; with ``wait``, return when the connection is closed
        (at most ``ws_close_timeout`` later), else as soon as the close frame is handed over."""
        await self._session.close(code, reason, wait=wait)

    def __aiter__(self) -> WebSocket:
        return self

    def __anext__(self) -> Coroutine[Any, Any, Data]:
        return self._session.receive(iterating=True)

    def __repr__(self) -> str:
        return f"<WebSocket {self.request.request.target}>"
