"""ASGI 3 applications as channel handlers: one request's scope, its messages and their rules.

The app runs in the handler's own task (no task per request) and gives its response to the
channel as soon as it is known, before it returns: a single-body response whole (sent with a
Content-Length), a streamed one through a zero-size memory channel, so that the app's ``send``
waits for the client to read (backpressure) and nothing piles up in memory. What the app does
after that (background tasks) runs on without holding the response back, and without holding
back the connection's next request.

What an app is (its types, ASGI 2 told from ASGI 3) is ``app.py``'s; this module re-exports its
names as it always has.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final
from urllib.parse import unquote

import trio

from .._errors import ClientDisconnected, ProtocolError
from .._file import FileBody
from .._request import ExchangeView, Request
from .._response import Response, error_response, trailer_fields
from ..websocket import ASGIWebSocketHandler
from ._body_stream import BodyStream
from .app import ASGIApp, Message, Scope, as_asgi3, asgi2_as_3, is_async_callable, positional_parameters
from .extensions import EXTENSIONS, EXTENSIONS_HTTP1_0, link_value

__all__ = [
    "ASGIApp",
    "ASGIHandler",
    "ASGI_VERSIONS",
    "ClientDisconnected",
    "as_asgi3",
    "asgi2_as_3",
    "is_async_callable",
    "positional_parameters",
]

logger = logging.getLogger("trio_httpchannel.asgi")

ASGI_VERSIONS = {"version": "3.0", "spec_version": "2.4"}
"""The ``scope["asgi"]`` we promise: ASGI 3, HTTP spec 2.4, under which an app need not watch
for ``http.disconnect`` while it streams (Starlette does not): when the client's side ends in
the middle of a streamed response, the connection is aborted and the app cancelled with it,
and ``send()`` raises :class:`ClientDisconnected` (an ``OSError``) when what it sends can reach
no one."""

_DISCONNECT = {"type": "http.disconnect"}


class ASGIHandler:
    """A handler for :class:`HTTPChannel` that serves an ASGI 3 (or ASGI 2) application.

    ``root_path`` is where a proxy mounts the app: it goes into ``scope["root_path"]`` and in
    front of ``path`` and ``raw_path``, as Uvicorn does. ``state`` is the lifespan's state
    (:attr:`Lifespan.state`); each request's scope gets a shallow copy of it.

    The app must send ``http.response.start`` then ``http.response.body`` messages until one
    has ``more_body`` false; any other order raises ``RuntimeError`` in the app. An app that
    fails or returns before its response started gets its client a 500 (and one error log
    line); one that fails in the middle of a streamed body gets the connection aborted, so the
    client sees a truncated response, never a complete wrong one.

    What the client did reaches the app truthfully:

    - a request body that fails (malformed, over ``max_body_size``, stalled past
      ``body_timeout``) gives ``http.disconnect``, never a shorter ``more_body: False``; the
      client gets the body's error status (400, 413, 408) and the close whatever the app sends
      after, and the app's ``send()`` raises :class:`ClientDisconnected`;
    - when the client's side of the connection ends while the request is in flight,
      ``receive()`` gives ``http.disconnect`` at once (a pending call wakes up). An answer the
      app gives anyway is still written (a client that only half-closed reads it), but an app
      streaming its response then is cancelled and the stream cut (the connection aborted);
    - after the response is sent, ``receive()`` gives ``http.disconnect``;
    - an app still streaming the body of a HEAD answer (which is never sent) is cancelled once
      the head is written, so an endless stream (server-sent events) ends with it and the next
      request does not wait; one streaming a 204 or 304 body gets :class:`ClientDisconnected`
      from its next ``send()``.

    Work the app does after its response is complete (background tasks) is not cancelled when
    the connection closes; the connection's close waits for it, its next request does not.
    An exception the app lets out after ``send()`` raised :class:`ClientDisconnected` is
    logged at debug level only.

    The scope advertises the response extensions that work for its request (``extensions.py``):
    ``http.response.pathsend`` always, ``http.response.trailers`` and
    ``http.response.early_hint`` but over HTTP/1.0; a message of one not advertised raises
    ``RuntimeError`` in the app.

    The app's ``websocket`` scope is served by :attr:`websocket_handler`, which ``HTTPChannel``
    takes by default; an upgrade request that reaches this handler (a channel given another
    ``websocket_handler``, or none) is refused with a ``400``.
    """

    def __init__(self, app: Any, *, root_path: str = "", state: dict[str, Any] | None = None) -> None:
        self.app = as_asgi3(app)
        self.root_path = root_path
        self.state = state
        self.websocket_handler = ASGIWebSocketHandler(self.app, root_path=root_path, state=state)

    async def __call__(self, request: Request) -> Response:
        raw = request.headers._raw
        if _asks_websocket(raw):
            return error_response(400, "WebSocket is not supported by this server")
        return await _Call(self.app, self._scope(request, raw), request).respond()

    def _scope(self, request: Request, raw: Sequence[tuple[bytes, bytes]]) -> Scope:
        """The request's scope; ``raw`` is its header fields (``request.headers.raw``, read once
        for this and ``_asks_websocket`` from the attribute behind the property: two property
        calls cost ~1.4k instructions a request)."""
        root = self.root_path
        path = request.path
        scope: Scope = {
            "type": "http",
            "asgi": ASGI_VERSIONS,
            "http_version": request.http_version,
            "method": request.method,
            "scheme": request.scheme,
            "path": root + (unquote(path) if "%" in path else path),
            "raw_path": (root + path).encode("latin-1"),
            "query_string": request.query.encode("latin-1"),
            "root_path": root,
            "headers": raw,
            "client": request.client if isinstance(request.client, tuple) else None,
            "server": request.server if isinstance(request.server, tuple) else None,
            "extensions": (EXTENSIONS_HTTP1_0 if request.http_version == "1.0" else EXTENSIONS).copy(),
        }
        if self.state is not None:
            scope["state"] = self.state.copy()
        if request.tls is not None:
            scope["extensions"]["tls"] = request.tls.asgi()
        return scope


def _asks_websocket(raw: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether the request's first ``Upgrade`` field names ``websocket`` (any case), read from
    its raw fields: ``Headers.get`` would lower-case, encode and decode on every request."""
    for name, value in raw:
        if name == b"upgrade":
            return b"websocket" in value.lower()
    return False


class _Received(enum.Enum):
    """What ``_Call._body`` holds once no more of the request body can be received (a typed
    sentinel: before that it is ``None``, then the body's iterator)."""

    ALL = "the request body was received whole, failed, or was closed: receive() waits for the end"


_BODY_DONE: Final = _Received.ALL


class _Sending(enum.Enum):
    """How far the app's response has come: what ``_Call._send`` accepts next."""

    NOTHING = "nothing yet: http.response.start comes first (an early hint may come before it)"
    STARTED = "http.response.start was sent: the body, or the file by its path, comes next"
    STREAMING = "the body is under way: more of it comes next"
    TRAILING = "the body ended: the trailers announced in http.response.start come next"
    COMPLETE = "the response is complete: nothing more may be sent"


NOTHING: Final = _Sending.NOTHING
STARTED: Final = _Sending.STARTED
STREAMING: Final = _Sending.STREAMING
TRAILING: Final = _Sending.TRAILING
COMPLETE: Final = _Sending.COMPLETE


class _Call:
    """One request through the app: its receive and send, and the Response they produce.

    The app answering a HEAD request runs inside a cancel scope, ``_head_scope``, which the
    writer cancels if the app is still streaming once the head is written (no body follows).
    Other requests go without one: it would cost an eighth of a request, and an app streaming
    when its client leaves is cancelled by the connection's abort."""

    __slots__ = (
        "_app",
        "_scope",
        "_request",
        "_body",
        "_body_error",
        "_status",
        "_headers",
        "_trailers",
        "_response",
        "_stream",
        "_sending",
        "_head_scope",
    )

    def __init__(self, app: ASGIApp, scope: Scope, request: Request) -> None:
        self._app = app
        self._scope = scope
        self._request = request
        self._body: AsyncIterator[bytes] | _Received | None = None
        self._body_error: ProtocolError | ClientDisconnected | None = None
        self._status = 0
        self._headers: Any = ()
        self._trailers: list[tuple[bytes, bytes]] | None = None
        """The trailers received so far, when http.response.start announced them."""
        self._response: Response | None = None
        self._stream: BodyStream | None = None
        self._sending = NOTHING
        self._head_scope: trio.CancelScope | None = None

    async def respond(self) -> Response:
        """Run the app; raise what it failed with before its response started. When the
        request body failed, that is the body's error whatever the app raised (a framework
        turns ``http.disconnect`` into an exception of its own): a ``ProtocolError`` for the
        channel to answer, or ``ClientDisconnected`` when the connection ended under it."""
        try:
            if self._request.method == "HEAD":
                await self._run_for_head()
            else:
                await self._app(self._scope, self._receive, self._send)
        except Exception as error:
            return self._app_failed(error)
        if self._sending is not COMPLETE:
            return self._app_failed(RuntimeError("the ASGI app returned without completing its response"))
        assert self._response is not None
        return self._response

    async def _run_for_head(self) -> None:
        self._head_scope = trio.CancelScope()
        with self._head_scope:
            await self._app(self._scope, self._receive, self._send)
        if self._head_scope.cancelled_caught:
            self._sending = COMPLETE

    def _app_failed(self, error: Exception) -> Response:
        if self._response is None:
            raise self._body_error or error
        if self._stream is not None and self._sending is not COMPLETE:
            self._stream.fail(error)
        elif isinstance(error, ClientDisconnected):
            logger.debug("the ASGI app stopped after its response: %s", error)
        else:
            logger.error("the ASGI app failed after its response was sent", exc_info=error)
        return self._response

    # receive ------------------------------------------------------------------------------------

    async def _receive(self) -> Message:
        body = self._body
        if body is None:
            body = self._body = self._request.body.__aiter__()
        if body is not _BODY_DONE:
            try:
                return {"type": "http.request", "body": await body.__anext__(), "more_body": True}
            except StopAsyncIteration:
                self._body = _BODY_DONE
                return {"type": "http.request", "body": b"", "more_body": False}
            except (ProtocolError, ClientDisconnected) as error:
                self._body = _BODY_DONE
                self._body_error = error
                return _DISCONNECT
            except trio.ClosedResourceError:
                self._body = _BODY_DONE
                return _DISCONNECT
        exchange = self._request._exchange
        if exchange is not None and not exchange.is_over:
            await exchange.wait_over()
        return _DISCONNECT

    # send ---------------------------------------------------------------------------------------

    async def _send(self, message: Message) -> None:
        error = self._body_error
        if error is not None:
            if isinstance(error, ProtocolError):
                raise ClientDisconnected(f"the client was answered {error.status} ({error.message}) instead")
            raise ClientDisconnected(str(error))
        kind = message["type"]
        if kind == "http.response.body":
            await self._send_body(message.get("body", b""), message.get("more_body", False))
        elif kind == "http.response.start":
            self._start(message)
        elif kind == "http.response.pathsend":
            await self._send_path(message["path"])
        elif kind == "http.response.trailers":
            await self._send_trailers(message.get("headers", ()), message.get("more_trailers", False))
        elif kind == "http.response.early_hint":
            await self._send_early_hint(message.get("links", ()))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in an http scope")

    def _check_extension(self, kind: str) -> None:
        if kind not in EXTENSIONS_HTTP1_0 and self._request.http_version == "1.0":
            raise RuntimeError(f"{kind} is not in scope['extensions'] for an HTTP/1.0 request")

    def _start(self, message: Message) -> None:
        if self._sending is not NOTHING:
            raise RuntimeError("http.response.start sent twice")
        if message.get("trailers", False):
            self._check_extension("http.response.trailers")
            self._trailers = []
        self._status = message["status"]
        self._headers = message.get("headers", ())
        self._sending = STARTED

    async def _send_body(self, body: bytes, more_body: bool) -> None:
        sending = self._sending
        if sending is NOTHING:
            raise RuntimeError("http.response.body sent before http.response.start")
        if sending is TRAILING or sending is COMPLETE:
            raise RuntimeError("http.response.body sent after the response body ended")
        trailers = self._trailers
        stream = self._stream
        if stream is None:
            if not more_body and trailers is None:
                self._sending = COMPLETE
                response = self._response = Response(self._status, self._headers, body)
                await self._exchange().respond_early(response)
                return
            stream = self._stream = BodyStream(self._head_scope)
            response = self._response = Response(self._status, self._headers, stream, trailers=trailers)
            exchange = self._exchange()
            await exchange.respond_early(response)
            exchange.abort_on_client_left()
        if more_body:
            self._sending = STREAMING
        elif trailers is not None:
            self._sending = TRAILING
        else:
            self._sending = COMPLETE
            stream.complete = True
        await stream.put(body, more_body or trailers is not None)

    async def _send_path(self, path: str) -> None:
        """The body is the file at ``path`` (``http.response.pathsend``): checked now, so that
        a missing or unreadable file fails this ``send()`` (an ``OSError``) and the client gets
        a 500 before anything is sent; sent as the client reads (``FileBody``)."""
        if self._sending is not STARTED:
            raise RuntimeError("http.response.pathsend comes right after http.response.start, in place of the body")
        if self._trailers is not None:
            raise RuntimeError("http.response.pathsend cannot be followed by trailers")
        if not os.path.isabs(path):
            raise ValueError(f"http.response.pathsend takes an absolute path, got {path!r}")
        body = FileBody(path)
        self._sending = COMPLETE
        response = self._response = Response(self._status, self._headers, body)
        await self._exchange().respond_early(response)

    async def _send_trailers(self, headers: Any, more_trailers: bool) -> None:
        """Trailers after the body: checked now (``ValueError``: the app fails, the response
        is cut), sent once the last of them came, with the end of the body."""
        trailers = self._trailers
        if trailers is None:
            raise RuntimeError("http.response.trailers sent without trailers: True in http.response.start")
        if self._sending is not TRAILING:
            raise RuntimeError(f"http.response.trailers sent when {self._sending.value}")
        trailers.extend(trailer_fields(headers))
        if more_trailers:
            return
        assert self._response is not None and self._stream is not None
        self._response.trailers = trailers
        self._sending = COMPLETE
        self._stream.complete = True
        await self._stream.put(b"", False)

    async def _send_early_hint(self, links: Any) -> None:
        """``103 Early Hints`` with a ``Link`` field per link, sent now when it can go before the
        response (see ``Exchange.send_informational``), else dropped: hints are advisory."""
        self._check_extension("http.response.early_hint")
        if self._sending is not NOTHING and self._sending is not STARTED:
            raise RuntimeError("http.response.early_hint sent after the response began")
        headers = [("link", link_value(link)) for link in links]
        exchange = self._request._exchange
        if headers and self._response is None and exchange is not None:
            await exchange.send_informational(103, headers)

    def _exchange(self) -> ExchangeView:
        """Where the response goes, once it is made and kept in ``_response``: a plain call, not
        a coroutine (one more frame to create and await on every response)."""
        exchange = self._request._exchange
        if exchange is None:
            raise ClientDisconnected("the request is over: the connection closed before the response")
        return exchange
