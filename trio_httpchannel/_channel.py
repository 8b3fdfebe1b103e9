"""HTTPChannel: one HTTP/1.1 connection as a nursery of a reader, a writer and handler tasks.

The only module that does I/O for a connection. The reader parses requests and starts a handler
task for each, at most ``max_pipeline`` at once; the writer sends their responses strictly in
request order. Every timer is a cancel scope. See ``docs/design.md`` for the task diagram.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterable, Awaitable, Callable

import trio

from ._config import Settings
from ._errors import ProtocolError
from ._headers import Headers
from ._head import RequestHead
from ._parser import ABORTED, CLOSED, END, NEED_DATA, RequestParser
from ._request import Address, Request, RequestBody
from ._response import LAST_CHUNK, Framing, Response, ResponseHead, check_body_chunk, chunk, error_response, serialize_head
from .http2 import HTTP2Connection, Upgraded, h2c_settings, opening

__all__ = ["HTTPChannel", "Handler"]

Handler = Callable[[Request], Awaitable[Response]]
ResponseHook = Callable[["Request | None", int, int, float], None]

logger = logging.getLogger("trio_httpchannel")

_RECEIVE_SIZE = 65536
_COALESCE_LIMIT = 16384
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_IDLE = object()
_HEAD = object()
_BODY = object()


class HTTPChannel:
    """Serves HTTP/1.1 on any ``trio.abc.Stream``: ``await channel(stream)`` runs one connection
    until it ends, so ``trio.serve_tcp(HTTPChannel(handler), port)`` is a server.

    ``handler`` is called once per request and returns the :class:`Response`. The keywords are
    the fields of :class:`Settings`, each documented there. Nothing a client does makes the call
    raise: protocol errors are answered and logged at debug level, handler errors answered with
    500 and logged once.

    ``on_response``, when given, is called after each response is sent with the request
    (``None`` for a request refused before it could be parsed), the status, the bytes sent
    (head and body) and the seconds from the request's head to the response's end: an access log.
    """

    def __init__(self, handler: Handler, *, on_response: ResponseHook | None = None, **settings: object) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be an async callable taking a Request, got {handler!r}")
        self.handler = handler
        self.on_response = on_response
        self.settings = Settings(**settings)  # type: ignore[arg-type]
        self._connections: set[_Connection] = set()
        self._http2_connections: set[HTTP2Connection] = set()
        self._openings: set[trio.CancelScope] = set()
        self._shutting_down = False

    async def __call__(self, stream: trio.abc.Stream) -> None:
        received = b""
        if self.settings.h2:
            opened = await self._opening(stream)
            if opened is None or opened[0]:
                await self._serve_http2(stream, opened[1] if opened else None)
                return
            received = opened[1]
        connection = _Connection(self, stream)
        if received:
            connection._parser.receive_data(received)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    async def _opening(self, stream: trio.abc.Stream) -> tuple[bool, bytes] | None:
        """Whether the client speaks HTTP/2 (see ``http2.opening``); ``None`` when it left, said
        nothing within ``timeout``, or the server shut down meanwhile (idle: close at once)."""
        if self._shutting_down:
            return None
        with trio.CancelScope() as scope:
            self._openings.add(scope)
            try:
                return await opening(stream, self.settings.timeout)
            finally:
                self._openings.discard(scope)
        return None

    async def _serve_http2(self, stream: trio.abc.Stream, received: bytes | None, upgraded: Upgraded | None = None) -> None:
        """Serve a connection that opened with HTTP/2 (``received``: the bytes read to know it;
        ``None``: the client left or stayed silent, so it is only closed), or whose request
        asked ``Upgrade: h2c`` (``upgraded``)."""
        if received is None:
            await trio.aclose_forcefully(stream)
            return
        connection = HTTP2Connection(stream, self.handler, self.settings, on_response=self.on_response, upgraded=upgraded)
        self._http2_connections.add(connection)
        try:
            if self._shutting_down:
                connection.shutdown()
            await connection.run(received)
        finally:
            self._http2_connections.discard(connection)

    def shutdown(self) -> None:
        """Stop taking new requests: idle connections close now, busy ones after their last
        in-flight response (which carries ``Connection: close``; over HTTP/2, after GOAWAY)."""
        self._shutting_down = True
        for connection in list(self._connections):
            connection.stop_reading()
        for http2 in list(self._http2_connections):
            http2.shutdown()
        for scope in list(self._openings):
            scope.cancel()

    @property
    def connection_count(self) -> int:
        """Connections being served now."""
        return len(self._connections) + len(self._http2_connections)


class _Exchange:
    """One request and its response, on their way through the connection."""

    __slots__ = (
        "head",
        "request",
        "body_send",
        "response",
        "ready",
        "done",
        "continue_wanted",
        "continue_sent",
        "body_complete",
        "body_failed",
        "started",
        "status",
        "finished",
        "inline",
        "holds_slot",
        "connection",
    )

    def __init__(self, connection: _Connection, head: RequestHead | None, started: float) -> None:
        self.connection = connection
        self.head = head
        self.request: Request | None = None
        self.body_send: trio.MemorySendChannel[bytes] | None = None
        self.response: Response | None = None
        self.ready = trio.Event()
        self.done: trio.Event | None = None
        self.continue_wanted = False
        self.continue_sent = False
        self.body_complete = head is None or not head.has_body
        self.body_failed = False
        self.started = started
        self.status = 0
        self.finished = False
        self.inline = False
        self.holds_slot = False

    def set_response(self, response: Response) -> None:
        self.response = response
        self.ready.set()

    async def respond_early(self, response: Response) -> None:
        """Give ``response`` before the handler returns (see ``Request._exchange``)."""
        await self.connection._respond_early(self, response)

    def want_continue(self) -> None:
        if self.head is not None and self.head.expects_continue and not self.continue_wanted:
            self.continue_wanted = True
            self.ready.set()

    async def wait_done(self) -> None:
        """Wait until this exchange's response is written (the event is made only when needed:
        most exchanges are never waited for)."""
        if not self.finished:
            if self.done is None:
                self.done = trio.Event()
            await self.done.wait()

    def mark_done(self) -> None:
        self.finished = True
        if self.done is not None:
            self.done.set()


class _Connection:
    """One connection's state, shared by its reader, writer and handler tasks. Slotted: an idle
    keep-alive connection costs memory for as long as it stays open."""

    __slots__ = (
        "_channel",
        "_handler",
        "_settings",
        "_stream",
        "_parser",
        "_slots",
        "_queue_send",
        "_queue_receive",
        "_nursery",
        "_handlers_running",
        "_handlers_done",
        "_read_scope",
        "_read_phase",
        "_body_exchange",
        "_in_flight",
        "_last",
        "_barrier",
        "_stopping",
        "_reader_done",
        "_eof",
        "_aborted",
        "_closing_sent",
        "_writer_returned",
        "_outbox",
        "_outbox_size",
        "_flushing",
        "_sent",
        "_scheme",
        "_client",
        "_server",
        "_socket",
        "_h2c",
    )

    def __init__(self, channel: HTTPChannel, stream: trio.abc.Stream) -> None:
        self._channel = channel
        self._handler = channel.handler
        self._settings = channel.settings
        self._stream = stream
        self._parser = RequestParser(self._settings)
        self._slots = trio.Semaphore(self._settings.max_pipeline)
        self._queue_send, self._queue_receive = trio.open_memory_channel[_Exchange](self._settings.max_pipeline)
        self._nursery: trio.Nursery | None = None
        self._handlers_running = 0
        self._handlers_done: trio.Event | None = None
        self._read_scope = trio.CancelScope()
        self._read_phase: object = None
        self._body_exchange: _Exchange | None = None
        self._in_flight = 0
        self._last: _Exchange | None = None
        self._barrier = False
        self._stopping = False
        self._reader_done = False
        self._eof = False
        self._aborted = False
        self._closing_sent = False
        self._writer_returned = False
        self._outbox: list[bytes] = []
        self._outbox_size = 0
        self._flushing = False
        self._sent = 0
        self._scheme, self._client, self._server = _addresses(stream)
        self._socket = stream.socket if type(stream) is trio.SocketStream else None
        self._h2c: Upgraded | None = None

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self._channel._shutting_down:
                    self._stopping = True
                nursery.start_soon(self._read_requests)
                await self._write_responses()
                self._writer_returned = True
                await self._finish_handlers()
                nursery.cancel_scope.cancel()
            if not self._writer_returned and not self._aborted:
                logger.debug("%s did not read a response within send_timeout; aborting", self._peer())
                self._aborted = True
            if self._closing_sent and not self._aborted and not self._eof:
                await self._linger()
            if self._h2c is not None:
                await self._channel._serve_http2(self._stream, bytes(self._parser._buffer), self._h2c)
        except Exception:
            logger.exception("internal error while serving %s; the connection is closed", self._peer())
        finally:
            await trio.aclose_forcefully(self._stream)

    async def _finish_handlers(self) -> None:
        """The last response is written: stop the reader and, unless a request was left
        unanswered (dropQueuedRequests: everything is cancelled), let the handlers still running
        finish what they do after their response (an ASGI app's background tasks)."""
        self._read_scope.cancel()
        if self._in_flight == 0 and self._handlers_running:
            self._handlers_done = trio.Event()
            await self._handlers_done.wait()

    def stop_reading(self) -> None:
        """Take no new request; close at once if idle (graceful shutdown)."""
        self._stopping = True
        if self._read_phase is _IDLE:
            self._read_scope.cancel()

    def _client_gone(self, reason: str) -> _ClientGone:
        """Abort first, so that a handler reading the body sees Cancelled, not a short body."""
        self._abort(reason)
        return _ClientGone(reason)

    def _abort(self, reason: str) -> None:
        logger.debug("aborting the connection of %s: %s", self._peer(), reason)
        self._aborted = True
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # The reader task ---------------------------------------------------------------------------

    async def _read_requests(self) -> None:
        with self._queue_send:
            try:
                with self._read_scope:
                    while not self._stopping and await self._read_request():
                        pass
                if self._read_scope.cancelled_caught and not self._writer_returned:
                    await self._timed_out()
            except ProtocolError as error:
                await self._refuse(error)
            except _ClientGone:
                pass
            finally:
                self._reader_done = True

    async def _timed_out(self) -> None:
        """The read scope's deadline passed (or shutdown cancelled an idle read)."""
        if self._read_phase is _HEAD:
            raise ProtocolError(408, "the request head did not arrive within header_timeout")
        exchange = self._body_exchange
        if self._read_phase is _BODY and exchange is not None:
            error = ProtocolError(408, "the request body stalled for longer than body_timeout")
            self._fail_body(exchange, error)

    async def _read_request(self) -> bool:
        """Read and dispatch one request; whether the connection may carry another. (Its own
        frame, so that nothing of an answered request stays referenced while the next is
        awaited: an idle connection holds no request.)"""
        head = await self._next_head()
        if head is None:
            return False
        if self._upgrades_to_h2c(head):
            return False
        exchange = await self._dispatch(head)
        await self._feed_body(exchange)
        return head.keep_alive and not exchange.body_failed and not self._closing_sent

    def _upgrades_to_h2c(self, head: RequestHead) -> bool:
        """A lone request without a body asking ``Upgrade: h2c``: the connection goes on in
        HTTP/2 once this one has ended (``run``), the request answered there as stream 1."""
        if not self._settings.h2 or head.has_body or self._in_flight or head.http_version != "1.1":
            return False
        settings = h2c_settings(head.headers)
        if settings is None:
            return False
        self._expect_end()
        self._h2c = Upgraded(head.method, head.target, list(head.headers), settings)
        return True

    async def _next_head(self) -> RequestHead | None:
        parser = self._parser
        started: float | None = None
        while True:
            event = parser.next_event()
            if isinstance(event, RequestHead):
                return event
            if event is CLOSED:
                return None
            if started is None and parser.has_partial_request:
                started = trio.current_time()
            if started is not None:
                await self._receive(started + self._settings.header_timeout, _HEAD)
            elif self._in_flight:
                await self._receive(math.inf, _IDLE)
            else:
                await self._receive(trio.current_time() + self._settings.timeout, _IDLE)
            if self._stopping and not parser.has_partial_request:
                return None

    async def _receive(self, deadline: float, phase: object) -> None:
        """Read once into the parser. The read scope's deadline is ``deadline`` only while
        reading: its expiry ends the reader, and ``phase`` says what timed out."""
        scope = self._read_scope
        scope.deadline = deadline
        self._read_phase = phase
        data: bytes | bytearray
        try:
            if self._socket is not None:
                data = await self._socket.recv(_RECEIVE_SIZE)
            else:
                data = await self._stream.receive_some(_RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            raise self._client_gone(f"reading failed: {error!r}") from None
        scope.deadline = math.inf
        self._read_phase = None
        if not data:
            self._eof = True
        self._parser.receive_data(data)

    async def _dispatch(self, head: RequestHead) -> _Exchange:
        """Start answering ``head``: in this task when nothing else is in flight or pipelined
        behind it (sparing a task and a wake-up), else in a handler task of its own."""
        if not head.has_body and self._writer_idle() and not self._parser.has_buffered_data:
            exchange = self._exchange(head)
            exchange.inline = True
            self._in_flight += 1
            self._last = exchange
            response = await self._call_handler(exchange)
            if exchange.response is None:
                exchange.response = response
                await self._deliver(exchange)
                await self._flush()
            return exchange
        if (not head.safe or self._barrier) and self._last is not None:
            await self._last.wait_done()
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await self._slots.acquire()
        exchange = self._exchange(head)
        exchange.holds_slot = True
        self._barrier = not head.safe or head.http_version == "1.0"
        self._enqueue(exchange)
        self._handlers_running += 1
        assert self._nursery is not None
        self._nursery.start_soon(self._respond, exchange)
        return exchange

    def _writer_idle(self) -> bool:
        """Whether nothing is in flight, queued or being written, so this task may write."""
        return self._in_flight == 0 and not self._outbox and not self._flushing

    def _exchange(self, head: RequestHead) -> _Exchange:
        exchange = _Exchange(self, head, self._now_if_logging())
        body: RequestBody
        if head.has_body:
            send, receive = trio.open_memory_channel[bytes](0)
            exchange.body_send = send
            body = RequestBody(receive, exchange.want_continue)
        else:
            body = RequestBody(None)
        exchange.request = Request(
            head.method,
            head.target,
            head.http_version,
            Headers(head.headers),
            body,
            scheme=self._scheme,
            client=self._client,
            server=self._server,
            nursery=self._nursery,
        )
        exchange.request._exchange = exchange
        return exchange

    def _enqueue(self, exchange: _Exchange) -> None:
        self._in_flight += 1
        self._last = exchange
        self._queue_send.send_nowait(exchange)

    async def _feed_body(self, exchange: _Exchange) -> None:
        send = exchange.body_send
        if send is None:
            self._expect_end()
            return
        with send:
            if exchange.head is not None and exchange.head.expects_continue:
                await exchange.ready.wait()
            self._body_exchange = exchange
            try:
                await self._pump_body(exchange, send)
                self._parser.start_next_request()
            except ProtocolError as error:
                self._fail_body(exchange, error)
            self._body_exchange = None

    def _fail_body(self, exchange: _Exchange, error: ProtocolError) -> None:
        exchange.body_failed = True
        assert exchange.request is not None
        exchange.request.body._fail(error)
        logger.debug("bad request body from %s: %s", self._peer(), error.message)

    async def _pump_body(self, exchange: _Exchange, send: trio.MemorySendChannel[bytes]) -> None:
        parser = self._parser
        discarding = False
        while True:
            event = parser.next_event()
            if event is END:
                exchange.body_complete = True
                return
            if event is ABORTED:
                raise self._client_gone("the client closed its side in the middle of a request body")
            if event is NEED_DATA:
                await self._receive(trio.current_time() + self._settings.body_timeout, _BODY)
                continue
            assert isinstance(event, bytes)
            if not discarding:
                try:
                    await send.send(event)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    discarding = True

    def _expect_end(self) -> None:
        event = self._parser.next_event()
        assert event is END
        self._parser.start_next_request()

    async def _refuse(self, error: ProtocolError) -> None:
        logger.debug("refusing a request from %s: %s %s", self._peer(), error.status, error.message)
        await self._slots.acquire()
        exchange = _Exchange(self, None, self._now_if_logging())
        exchange.holds_slot = True
        exchange.set_response(error_response(error.status, error.message))
        self._in_flight += 1
        self._last = exchange
        await self._queue_send.send(exchange)

    # Handler tasks -----------------------------------------------------------------------------

    async def _respond(self, exchange: _Exchange) -> None:
        try:
            response = await self._call_handler(exchange)
            if exchange.response is None:
                exchange.set_response(response)
        finally:
            self._handlers_running -= 1
            if self._handlers_running == 0 and self._handlers_done is not None:
                self._handlers_done.set()

    async def _respond_early(self, exchange: _Exchange, response: Response) -> None:
        """Give ``response`` before the handler returns (what it returns is then ignored). An
        inline exchange's bytes are written by this task at once; a stream goes to the writer,
        since this task is the one producing it."""
        if exchange.response is not None:
            raise RuntimeError("the response to this request was already given")
        if not exchange.inline:
            exchange.set_response(response)
            return
        exchange.response = response
        if isinstance(response.body, (bytes, bytearray, memoryview)):
            await self._deliver(exchange)
            await self._flush()
            return
        exchange.inline = False
        self._queue_send.send_nowait(exchange)

    async def _call_handler(self, exchange: _Exchange) -> Response:
        assert exchange.request is not None
        try:
            response = await self._handler(exchange.request)
            if not isinstance(response, Response):
                raise TypeError(f"the handler returned {response!r}, not a Response")
        except ProtocolError as error:
            return error_response(error.status, error.message)
        except Exception:
            logger.exception("the handler failed on %r from %s", exchange.request, self._peer())
            return error_response(500, "the server failed to produce a response")
        return response

    # The writer (runs in the connection's own task) --------------------------------------------

    async def _write_responses(self) -> None:
        """Send every response in request order, until one closes the connection. Responses
        that are ready one after another go out in one write (pipelining's whole point)."""
        while not self._closing_sent and await self._write_next():
            pass
        await self._flush()

    async def _write_next(self) -> bool:
        """Deliver the next exchange, flushing first if it is not queued yet; False at the end.
        (Its own frame, so that a delivered exchange is not held while the next is awaited.)"""
        receive = self._queue_receive
        try:
            exchange = receive.receive_nowait()
        except trio.WouldBlock:
            exchange = None
        except trio.EndOfChannel:
            return False
        if exchange is None:
            await self._flush()
            if self._in_flight == 0:
                self._arm_idle_timer()
            try:
                exchange = await receive.receive()
            except trio.EndOfChannel:
                return False
        await self._deliver(exchange)
        return True

    async def _deliver(self, exchange: _Exchange) -> None:
        sent_before = self._sent
        response = exchange.response
        if response is None:
            await self._flush()
            response = await self._wait_for_response(exchange)
        keep_alive = await self._send_response(exchange, response)
        hook = self._channel.on_response
        if hook is not None:
            hook(exchange.request, exchange.status, self._sent - sent_before, trio.current_time() - exchange.started)
        self._in_flight -= 1
        if exchange.holds_slot:
            self._slots.release()
        if exchange.request is not None:
            exchange.request.body._abandon()
        exchange.mark_done()
        if exchange.request is not None:
            exchange.request._exchange = None
        if exchange is self._last:
            self._last = None
        if not keep_alive:
            self._closing_sent = True

    async def _wait_for_response(self, exchange: _Exchange) -> Response:
        """Wait for the handler's response, sending ``100 Continue`` if it reads the body first."""
        while exchange.response is None:
            await exchange.ready.wait()
            if exchange.continue_wanted and not exchange.continue_sent and exchange.response is None:
                exchange.continue_sent = True
                await self._send(_CONTINUE)
                exchange.ready = trio.Event()
        return exchange.response

    def _now_if_logging(self) -> float:
        return trio.current_time() if self._channel.on_response is not None else 0.0

    def _arm_idle_timer(self) -> None:
        if self._read_phase is _IDLE:
            self._read_scope.deadline = trio.current_time() + self._settings.timeout

    async def _send_response(self, exchange: _Exchange, response: Response) -> bool:
        head = exchange.head
        method = head.method if head is not None else "GET"
        version = head.http_version if head is not None else "1.1"
        try:
            serialized = serialize_head(
                response, method=method, http_version=version, keep_alive=self._may_persist(exchange)
            )
        except ValueError as error:
            logger.error("the handler's response to %r cannot be sent: %s", exchange.request, error)
            response = error_response(500, "the server produced an invalid response")
            serialized = serialize_head(response, method=method, http_version=version, keep_alive=False)
        exchange.status = response.status
        body = response.body
        if not isinstance(body, (bytes, bytearray, memoryview)):
            await self._send_stream(serialized, body)
            return serialized.keep_alive
        self._put(serialized.data)
        if serialized.framing is not Framing.NONE and body:
            self._put(bytes(body))
        if self._outbox_size > _COALESCE_LIMIT:
            await self._flush()
        return serialized.keep_alive

    def _may_persist(self, exchange: _Exchange) -> bool:
        head = exchange.head
        if head is None or not head.keep_alive or exchange.body_failed:
            return False
        if (self._stopping or self._reader_done) and self._in_flight == 1:
            return False
        if exchange.body_complete:
            return True
        if head.expects_continue and not exchange.continue_sent:
            return False
        remaining = self._parser.body_remaining
        return remaining is not None and remaining <= self._settings.max_discard

    async def _send_stream(self, head: ResponseHead, body: AsyncIterable[bytes]) -> None:
        await self._send(head.data)
        if head.framing is Framing.NONE:
            await _close_iterable(body)
            return
        sent = 0
        try:
            async for data in body:
                check_body_chunk(data)
                if not data:
                    continue
                sent += len(data)
                if head.length is not None and sent > head.length:
                    raise ValueError(f"the response body is longer than its Content-Length {head.length}")
                await self._send(chunk(data) if head.framing is Framing.CHUNKED else data)
        except Exception:
            logger.exception("the response body stream failed; aborting the connection of %s", self._peer())
            self._abort("response body stream failed")
            await trio.lowlevel.checkpoint()
        if head.length is not None and sent < head.length:
            logger.error("the response body ended %d bytes short of its Content-Length", head.length - sent)
            self._abort("response body shorter than its Content-Length")
            await trio.lowlevel.checkpoint()
        if head.framing is Framing.CHUNKED:
            await self._send(LAST_CHUNK)

    def _put(self, data: bytes) -> None:
        """Queue ``data`` for the next write, after everything queued before it."""
        self._outbox.append(data)
        self._outbox_size += len(data)
        self._sent += len(data)

    async def _send(self, data: bytes) -> None:
        """Write ``data`` now, after whatever was queued before it."""
        self._put(data)
        await self._flush()

    async def _flush(self) -> None:
        """Write what is queued, in one ``send_all``. A client that does not read it within
        send_timeout cancels the whole connection: the deadline is the nursery's, so it reaches
        whichever task is writing."""
        if not self._outbox:
            return
        data = self._outbox[0] if len(self._outbox) == 1 else b"".join(self._outbox)
        self._outbox.clear()
        self._outbox_size = 0
        assert self._nursery is not None
        scope = self._nursery.cancel_scope
        scope.deadline = trio.current_time() + self._settings.send_timeout
        self._flushing = True
        try:
            await self._send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            self._abort(f"writing failed: {error!r}")
            await trio.lowlevel.checkpoint()
        finally:
            self._flushing = False
        scope.deadline = math.inf

    async def _send_all(self, data: bytes) -> None:
        """The stream's ``send_all``; on a plain TCP stream, its socket's ``send`` itself, which
        skips the stream's per-call bookkeeping (a tenth of a small request's cost). Only the
        writer sends, and never after ``send_eof``, so that bookkeeping has nothing to catch;
        an ``OSError`` means the client is gone, as ``BrokenResourceError`` does."""
        sock = self._socket
        if sock is None:
            await self._stream.send_all(data)
            return
        sent = await sock.send(data)
        if sent < len(data):
            with memoryview(data) as view:
                while sent < len(view):
                    sent += await sock.send(view[sent:])

    async def _linger(self) -> None:
        """Half-close, then read and discard until the client closes or linger_timeout passes,
        so that unread request bytes cannot make the kernel reset away our last response."""
        stream = self._stream
        with trio.move_on_after(self._settings.linger_timeout):
            try:
                if isinstance(stream, trio.abc.HalfCloseableStream):
                    await stream.send_eof()
                while await stream.receive_some(_RECEIVE_SIZE):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                pass

    def _peer(self) -> str:
        return str(self._client) if self._client is not None else "an unknown peer"


class _ClientGone(Exception):
    """The client vanished; nothing more can be said to it."""


async def _close_iterable(body: AsyncIterable[bytes]) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()


def _addresses(stream: trio.abc.Stream) -> tuple[str, Address, Address]:
    """The scheme and the socket's two addresses, found under any stream wrappers."""
    scheme = "http"
    while True:
        if isinstance(stream, trio.SSLStream):
            scheme = "https"
        inner = getattr(stream, "transport_stream", None)
        if inner is None:
            break
        stream = inner
    sock = getattr(stream, "socket", None)
    if sock is None:
        return scheme, None, None
    try:
        return scheme, _address(sock.getpeername()), _address(sock.getsockname())
    except OSError:
        return scheme, None, None


def _address(raw: object) -> Address:
    if isinstance(raw, tuple):
        return raw[:2]
    if isinstance(raw, (str, bytes)):
        return raw.decode() if isinstance(raw, bytes) else raw
    return None
