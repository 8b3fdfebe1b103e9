"""ASGI applications' WebSocket routes (the ``websocket`` scope of the ASGI spec), on the native API.

The app runs in the handler's task. Its first ``receive`` is ``websocket.connect``; it answers
with ``websocket.accept`` (which sends the ``101``), ``websocket.close`` (a ``403``) or a denial
response (the ``websocket.http.response`` extension, advertised in the scope). What it does when
it fails or returns is the native API's rule: ``500`` before accepting, close 1011 or 1000 after.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

import trio

from .._response import Response
from ._api import WebSocket, WebSocketRequest
from ._errors import CloseReason, ConnectionClosed

__all__ = ["WEBSOCKET_ASGI_VERSIONS", "ASGIWebSocketHandler"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

WEBSOCKET_ASGI_VERSIONS = {"version": "3.0", "spec_version": "2.4"}
"""ASGI 3, WebSocket spec 2.4: ``reason`` in ``websocket.close``, and ``send`` on a closed
connection raises an ``OSError`` (:class:`ConnectionClosed`)."""

_EXTENSIONS: dict[str, dict[str, Any]] = {"websocket.http.response": {}}


class _Phase(enum.Enum):
    """Where the app is in the ASGI WebSocket conversation.

    ``CONNECTING`` --accept--> ``CONNECTED`` --close--> ``CLOSED``;
    ``CONNECTING`` --close--> ``CLOSED`` (403);
    ``CONNECTING`` --http.response.start--> ``RESPONDING`` --last body--> ``CLOSED``.
    """

    CONNECTING = "connecting"
    RESPONDING = "responding"
    CONNECTED = "connected"
    CLOSED = "closed"


class ASGIWebSocketHandler:
    """A WebSocket handler (for ``HTTPChannel``'s ``websocket_handler``) serving an ASGI 3 app's
    ``websocket`` scope. ``root_path`` and ``state`` are as for ``ASGIHandler``, which makes one
    of these for its app."""

    def __init__(self, app: ASGIApp, *, root_path: str = "", state: dict[str, Any] | None = None) -> None:
        self.app = app
        self.root_path = root_path
        self.state = state

    async def __call__(self, request: WebSocketRequest) -> None:
        await _Call(self.app, self._scope(request), request).run()

    def _scope(self, request: WebSocketRequest) -> Scope:
        root = self.root_path
        scope: Scope = {
            "type": "websocket",
            "asgi": WEBSOCKET_ASGI_VERSIONS,
            "http_version": request.request.http_version,
            "scheme": request.scheme,
            "path": root + unquote(request.path),
            "raw_path": (root + request.path).encode("latin-1"),
            "query_string": request.query.encode("latin-1"),
            "root_path": root,
            "headers": request.headers.raw,
            "client": request.client if isinstance(request.client, tuple) else None,
            "server": request.server if isinstance(request.server, tuple) else None,
            "subprotocols": list(request.subprotocols),
            "extensions": _EXTENSIONS,
        }
        if self.state is not None:
            scope["state"] = self.state.copy()
        if request.request.tls is not None:
            scope["extensions"] = {**scope["extensions"], "tls": request.request.tls.asgi()}
        return scope


class _Call:
    """One WebSocket request through the app: its receive and send."""

    __slots__ = ("_app", "_connect_sent", "_decided", "_denial", "_phase", "_request", "_scope", "_websocket")

    def __init__(self, app: ASGIApp, scope: Scope, request: WebSocketRequest) -> None:
        self._app = app
        self._scope = scope
        self._request = request
        self._phase = _Phase.CONNECTING
        self._connect_sent = False
        self._decided = trio.Event()
        self._websocket: WebSocket | None = None
        self._denial: tuple[int, Any, list[bytes]] | None = None

    async def run(self) -> None:
        await self._app(self._scope, self._receive, self._send)
        if self._phase is _Phase.RESPONDING:
            raise RuntimeError("the ASGI app returned before its websocket.http.response body was complete")

    async def _receive(self) -> Message:
        websocket = self._websocket
        if websocket is None or not self._connect_sent:
            opening = await self._before_accepted()
            if opening is not None:
                return opening
            websocket = self._websocket
            assert websocket is not None
        try:
            data = await websocket.receive()
        except ConnectionClosed as closed:
            return {"type": "websocket.disconnect", "code": closed.reason.code, "reason": closed.reason.reason}
        if type(data) is str:
            return {"type": "websocket.receive", "text": data}
        return {"type": "websocket.receive", "bytes": data}

    async def _before_accepted(self) -> Message | None:
        """``websocket.connect`` first; then, once the app accepted or refused, ``None`` (a
        message is to be received) or ``websocket.disconnect``."""
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        if not self._decided.is_set():
            await self._decided.wait()
        if self._websocket is None:
            return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        return None

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        phase = self._phase
        if phase is _Phase.CONNECTED and kind == "websocket.send":
            assert self._websocket is not None
            await self._websocket.send(_payload(message))
        elif phase is _Phase.CONNECTED and kind == "websocket.close":
            self._phase = _Phase.CLOSED
            assert self._websocket is not None
            await self._websocket.close(message.get("code") or 1000, message.get("reason") or "", wait=False)
        elif phase is _Phase.CONNECTING and kind == "websocket.accept":
            await self._accept(message)
        elif phase is _Phase.CONNECTING and kind == "websocket.close":
            await self._reject(Response(403))
        elif phase is _Phase.CONNECTING and kind == "websocket.http.response.start":
            self._phase = _Phase.RESPONDING
            self._denial = (message["status"], message.get("headers", ()), [])
        elif phase is _Phase.RESPONDING and kind == "websocket.http.response.body":
            await self._denial_body(message)
        elif phase is _Phase.CLOSED and kind == "websocket.send":
            if self._websocket is None:
                raise ConnectionClosed(CloseReason(1006, "the WebSocket was refused"))
            await self._websocket.send(_payload(message))
        elif phase is _Phase.CLOSED and kind == "websocket.close":
            return
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in a websocket scope that is {phase.value}")

    async def _accept(self, message: Message) -> None:
        headers = [(name, value) for name, value in message.get("headers", ())]
        try:
            self._websocket = await self._request.accept(message.get("subprotocol"), headers)
        except ConnectionClosed:
            self._phase = _Phase.CLOSED
            self._decided.set()
            raise
        self._phase = _Phase.CONNECTED
        self._decided.set()

    async def _denial_body(self, message: Message) -> None:
        assert self._denial is not None
        status, headers, body = self._denial
        body.append(message.get("body", b""))
        if not message.get("more_body", False):
            await self._reject(Response(status, headers, b"".join(body)))

    async def _reject(self, response: Response) -> None:
        self._phase = _Phase.CLOSED
        self._decided.set()
        await self._request.reject(response)


def _payload(message: Message) -> str | bytes:
    """What a ``websocket.send`` message sends: its ``text`` or its ``bytes``, exactly one."""
    text, data = message.get("text"), message.get("bytes")
    if text is not None and data is None:
        return text  # type: ignore[no-any-return]
    if data is not None and text is None:
        return data  # type: ignore[no-any-return]
    raise RuntimeError("a websocket.send message has exactly one of 'text' and 'bytes'")
