"""HTTPChannel: HTTP/1.1 served on any trio stream, one connection per call."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from .._access import ResponseHook
from .._config import Settings, SettingsKeywords
from .._handling import Handler
from .._response import HeaderPairs, error_response
from ..websocket import WebSocketHandler
from .connection import Connection, refuse

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["HTTPChannel"]


class HTTPChannel:
    """Serves HTTP/1.1 on any ``trio.abc.Stream``: ``await channel(stream)`` runs one connection
    until it ends, so ``trio.serve_tcp(HTTPChannel(handler), port)`` is a server.

    ``handler`` is called once per request, in a task of its own, and returns the
    :class:`Response`. The keywords are the fields of :class:`Settings`, each documented there.
    Nothing a client does makes the call raise: protocol errors are answered and logged at debug
    level, handler errors answered with 500 and logged once. A handler whose request body failed
    has the body's error answered whatever it returns; one that raises
    :class:`ClientDisconnected` (it found its client gone) has the connection aborted, quietly.
    While a request is in flight the connection goes on reading, so that the handler learns when
    the client leaves (``Request.wait_disconnected``).

    ``on_response``, when given, is called with a :class:`ResponseRecord` for every response
    that started to go out, once it is written or cut short: an access log. An exception it
    raises is logged and does not disturb the connection.

    ``websocket_handler`` serves WebSocket upgrade requests (see ``trio_httpchannel.websocket``);
    by default it is the ``handler``'s own ``websocket_handler`` attribute (``ASGIHandler`` has
    one). Without one, an upgrade request goes to ``handler`` like any other request.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        websocket_handler: WebSocketHandler | None = None,
        on_response: ResponseHook | None = None,
        **settings: Unpack[SettingsKeywords],
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be an async callable taking a Request, got {handler!r}")
        self.handler = handler
        self.websocket_handler: WebSocketHandler | None = websocket_handler or getattr(
            handler, "websocket_handler", None
        )
        self.on_response = on_response
        self.settings = Settings(**settings)
        self.shutting_down = False
        """Whether :meth:`shutdown` was called: connections take no new request (read-only)."""
        self._connections: set[Connection] = set()

    async def __call__(self, stream: trio.abc.Stream) -> None:
        connection = Connection(self, stream)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    def shutdown(self) -> None:
        """Stop taking new requests: idle connections close now, busy ones after their last
        in-flight response (which carries ``Connection: close``)."""
        self.shutting_down = True
        for connection in list(self._connections):
            connection.reader.shut_down()

    async def refuse(
        self,
        stream: trio.abc.Stream,
        status: int,
        message: str,
        *,
        headers: HeaderPairs = (),
        linger: float | None = None,
    ) -> None:
        """Answer a connection ``status`` without reading a request from it (the server is at its
        connection limit, say), as the channel answers a refused request: a short plain-text
        ``message``, ``headers`` added, ``Connection: close``; then close it with a lingering
        close, all of it within ``linger`` seconds (``linger_timeout`` when ``None``)."""
        response = error_response(status, message, headers)
        await refuse(stream, response, self.settings.linger_timeout if linger is None else linger)

    @property
    def connection_count(self) -> int:
        """Connections being served now."""
        return len(self._connections)
