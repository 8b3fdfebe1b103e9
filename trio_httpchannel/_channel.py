"""HTTPChannel: HTTP served on any trio stream, one connection per call, each in the protocol
its client speaks: HTTP/2 when it opens with the preface or picks ``h2`` by ALPN, else
HTTP/1.1 (which a request may still upgrade to HTTP/2 by ``h2c``, or to WebSocket).

This is the layer above the protocols: it knows how a connection says which it speaks, and
keeps the connections it serves so that a shutdown reaches them all.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from ._access import ResponseHook, ResponseRecord, report
from ._addresses import addresses, peer_name
from ._config import Settings, SettingsKeywords
from ._handling import Handler
from ._request import Address
from ._response import HeaderPairs, Response, error_response
from ._tls_opening import PLAIN_HTTP_MESSAGE, Opening, open_tls
from .http1 import HTTP1Connection, refuse
from .http2 import HTTP2Connection, Spoken, Upgraded, opening, refusal_opening, refuse_http2
from .websocket import OpenWebSockets, WebSocketHandler

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["HTTPChannel"]

logger = logging.getLogger("trio_httpchannel")


class HTTPChannel:
    """Serves HTTP/1.1 and HTTP/2 on any ``trio.abc.Stream``: ``await channel(stream)`` runs one
    connection until it ends, so ``trio.serve_tcp(HTTPChannel(handler), port)`` is a server.

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

    Over TLS (a ``trio.SSLStream`` not yet through its handshake) the channel does the
    handshake first, within ``header_timeout``; a client sending plain HTTP to it is answered
    ``400`` saying the port speaks HTTPS, one failing the handshake is closed (a debug line
    each). Handlers see what the handshake settled as ``request.tls``.

    ``websocket_handler`` serves WebSocket upgrade requests (see ``trio_httpchannel.websocket``),
    and over HTTP/2 extended CONNECT requests for a WebSocket (RFC 8441); by default it is the
    ``handler``'s own ``websocket_handler`` attribute (``ASGIHandler`` has one). Without one, an
    upgrade request goes to ``handler`` like any other request, and HTTP/2 connections do not
    advertise SETTINGS_ENABLE_CONNECT_PROTOCOL.
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
        self._connections: dict[HTTP1Connection, None] = {}
        """The HTTP/1.1 connections being served (this and ``_http2_connections`` are dicts, not
        sets: they hold an entry for each connection, and a set's table grows fourfold, to 105
        bytes a connection at 5,000 where a dict's stays under 37)."""
        self._calls = 0
        """Calls of the channel not yet returned: ``connection_count``."""
        self.websockets = OpenWebSockets()
        self._http2_connections: dict[HTTP2Connection, None] = {}
        self._openings: set[trio.CancelScope] = set()

    async def __call__(self, stream: trio.abc.Stream) -> None:
        self._calls += 1
        try:
            if isinstance(stream, trio.SSLStream) and not await self._open_tls(stream):
                return
            received = b""
            if self.settings.h2:
                opened = await self._opening(stream)
                if opened is None:
                    await trio.aclose_forcefully(stream)
                    return
                spoken, received = opened
                if spoken is Spoken.HTTP2:
                    await self.serve_http2(stream, received)
                    return
                if spoken is Spoken.STALLED:
                    stalled = error_response(408, "the request head did not arrive within header_timeout")
                    await self._refused(stream, stalled, None)
                    return
                del opened
            connection = HTTP1Connection(self, stream, received)
            del received  # the parser has the bytes: this frame keeps them no longer (an idle connection waits in it)
            self._connections[connection] = None
            try:
                handoff = await connection.run()
            finally:
                del self._connections[connection]
            del connection  # an open WebSocket keeps nothing of its HTTP/1.1 connection
            if handoff is not None:  # a WebSocket, served once the HTTP/1.1 connection is let go
                await handoff()
        finally:
            self._calls -= 1

    async def _open_tls(self, stream: trio.SSLStream[trio.abc.Stream], linger: float | None = None) -> bool:
        """Whether the TLS handshake is done, within ``header_timeout`` (and ``linger``, when
        given; see ``open_tls``). Plain HTTP is answered ``400`` on the transport (a lingering
        close within ``linger``), anything else closed."""
        timeout = self.settings.header_timeout
        opened = await open_tls(stream, timeout if linger is None else min(timeout, linger))
        if opened is Opening.PLAIN_HTTP:
            await self._refused(stream.transport_stream, error_response(400, PLAIN_HTTP_MESSAGE), linger)
        elif opened is Opening.FAILED:
            await trio.aclose_forcefully(stream)
        return opened is Opening.SECURE

    async def _opening(self, stream: trio.abc.Stream) -> tuple[Spoken, bytes] | None:
        """Whether the client speaks HTTP/2 (see ``http2.opening``); ``None`` when it left or
        said nothing within ``timeout`` (within ``header_timeout`` once the server is shutting
        down: a client that connected has a request to send, and closing would lose it)."""
        timeout = self.settings.header_timeout if self.shutting_down else self.settings.timeout
        with trio.CancelScope() as scope:
            self._openings.add(scope)
            try:
                return await opening(stream, timeout, self.settings.header_timeout)
            finally:
                self._openings.discard(scope)
        return None

    async def serve_http2(self, stream: trio.abc.Stream, received: bytes, upgraded: Upgraded | None = None) -> None:
        """Serve ``stream`` in HTTP/2: a connection that opened with HTTP/2 (``received``: the
        bytes read to know it), or an HTTP/1.1 one whose request asked ``Upgrade: h2c``
        (``upgraded``: that request, answered as stream 1)."""
        connection = HTTP2Connection(
            stream,
            self.handler,
            self.settings,
            on_response=self.on_response,
            upgraded=upgraded,
            websocket_handler=self.websocket_handler,
            open_websockets=self.websockets,
        )
        self._http2_connections[connection] = None
        try:
            if self.shutting_down:
                connection.shutdown()
            await connection.run(received)
        finally:
            del self._http2_connections[connection]

    def shutdown(self) -> None:
        """Stop taking new requests: idle connections close now, busy ones after their last
        in-flight response (which carries ``Connection: close``; over HTTP/2, after GOAWAY). A
        connection that has not said anything yet gets ``header_timeout`` for its first request,
        and every open WebSocket starts its close handshake with 1001 ("going away")."""
        self.shutting_down = True
        for connection in list(self._connections):
            connection.reader.shut_down()
        for http2 in list(self._http2_connections):
            http2.shutdown()
        deadline = trio.current_time() + self.settings.header_timeout
        for scope in list(self._openings):
            scope.deadline = min(scope.deadline, deadline)
        self.websockets.going_away()

    async def refuse(
        self,
        stream: trio.abc.Stream,
        status: int,
        message: str,
        *,
        headers: HeaderPairs = (),
        linger: float | None = None,
    ) -> None:
        """Answer a connection ``status`` without serving a request on it (the server is at its
        connection limit, say), as the channel answers a refused request: a short plain-text
        ``message``, ``headers`` added, ``Connection: close``; then close it with a lingering
        close, all of it within ``linger`` seconds (``linger_timeout`` when ``None``).

        The answer is in the protocol the client speaks, without serving a request. Over TLS
        the handshake comes first (as for any TLS connection, see :meth:`__call__`), and a client
        that picked ``h2`` by ALPN gets the answer on the first stream it opens, then GOAWAY. In
        cleartext with ``h2`` on, the client's first bytes tell (see ``http2.refusal_opening``):
        one opening with the HTTP/2 preface (prior knowledge) gets it in HTTP/2 too, any other
        in HTTP/1.1, and one that says nothing within ``linger`` is closed without an answer.
        With ``h2`` off it is answered in HTTP/1.1 at once. ``on_response`` gets one record per
        refusal (with no request; nothing ``sent`` when it was closed unanswered), as for any
        response."""
        linger = self.settings.linger_timeout if linger is None else linger
        response = error_response(status, message, headers)
        started = trio.current_time()
        preface = None
        if isinstance(stream, trio.SSLStream):
            if not await self._open_tls(stream, linger):
                return
        elif self.settings.h2:
            opened = await refusal_opening(stream, linger)
            if opened is None:
                client = addresses(stream)[1]
                await trio.aclose_forcefully(stream)
                self._record_refusal(client, response, 0, 0.0)
                return
            spoken, received = opened
            preface = received if spoken is Spoken.HTTP2 else None
        linger = max(0.0, linger - (trio.current_time() - started))
        await self._refused(stream, response, linger, preface)

    async def _refused(
        self, stream: trio.abc.Stream, response: Response, linger: float | None, preface: bytes | None = None
    ) -> None:
        """Answer ``response`` on ``stream`` without serving a request, in HTTP/2 to a TLS
        client that picked it by ALPN or a cleartext one that sent the ``preface`` (the bytes
        read, beginning with it), else in HTTP/1.1, then close; and record it."""
        linger = self.settings.linger_timeout if linger is None else linger
        client = addresses(stream)[1]
        if preface is not None or (isinstance(stream, trio.SSLStream) and stream.selected_alpn_protocol() == "h2"):
            sent, seconds = await refuse_http2(stream, response, linger, preface or b"")
        else:
            sent, seconds = await refuse(stream, response, linger)
        self._record_refusal(client, response, sent, seconds)

    def _record_refusal(self, client: Address, response: Response, sent: int, seconds: float) -> None:
        """Log a refusal at debug level and give ``on_response`` its record (no request)."""
        logger.debug("refused the connection from %s: %d", peer_name(client), response.status)
        if self.on_response is not None:
            report(self.on_response, ResponseRecord(client, None, response.status, sent, seconds, sent > 0))

    @property
    def connection_count(self) -> int:
        """Connections being served now: calls of the channel not yet returned, whatever they are
        doing (the TLS handshake, telling HTTP/2 from HTTP/1.1, serving either, or a WebSocket
        one of them handed over)."""
        return self._calls
