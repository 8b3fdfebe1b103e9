"""HTTPChannel: one HTTP/1.1 connection as a nursery of a reader, a writer and handler tasks.

The only module that does I/O for a connection. The reader parses requests and starts a handler
task for each, at most ``max_pipeline`` at once, and goes on reading, so that it notices a
client that leaves; the responses go out strictly in request order. Every timer is a cancel
scope. See ``docs/design.md`` for the task diagram.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterable, Awaitable, Callable

import trio

from ._access import ResponseRecord
from ._addresses import addresses, format_address
from ._config import Settings
from ._errors import ClientDisconnected, ProtocolError
from ._exchange import Exchange, Progress
from ._head import RequestHead
from ._headers import Headers
from ._outbox import COALESCE_LIMIT, Outbox
from ._parser import ABORTED, CLOSED, END, NEED_DATA, RequestParser
from ._request import Request, RequestBody
from ._response import LAST_CHUNK, Framing, Response, ResponseHead, check_body_chunk, chunk, error_response, serialize_head
from ._wire import Wire
from .http2 import HTTP2Connection, Upgraded, h2c_settings, opening
from .websocket import WebSocketHandler, is_websocket_upgrade, serve_upgrade

__all__ = ["HTTPChannel", "Handler", "ResponseHook"]

Handler = Callable[[Request], Awaitable[Response]]
ResponseHook = Callable[[ResponseRecord], None]

logger = logging.getLogger("trio_httpchannel")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_FIRST = object()
_IDLE = object()
_HEAD = object()
_BODY = object()
_WHOLE = (bytes, bytearray, memoryview)
"""The types of a body given whole; any other is an async iterable, streamed."""


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
        **settings: object,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be an async callable taking a Request, got {handler!r}")
        self.handler = handler
        self.websocket_handler: WebSocketHandler | None = websocket_handler or getattr(
            handler, "websocket_handler", None
        )
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
        connection = _Connection(self, stream, received)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    async def _opening(self, stream: trio.abc.Stream) -> tuple[bool, bytes] | None:
        """Whether the client speaks HTTP/2 (see ``http2.opening``); ``None`` when it left or
        said nothing within ``timeout`` (within ``header_timeout`` once the server is shutting
        down: a client that connected has a request to send, and closing would lose it)."""
        timeout = self.settings.header_timeout if self._shutting_down else self.settings.timeout
        with trio.CancelScope() as scope:
            self._openings.add(scope)
            try:
                return await opening(stream, timeout)
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
        in-flight response (which carries ``Connection: close``; over HTTP/2, after GOAWAY). A
        connection that has not said anything yet gets ``header_timeout`` for its first request."""
        self._shutting_down = True
        for connection in list(self._connections):
            connection.stop_reading()
        for http2 in list(self._http2_connections):
            http2.shutdown()
        deadline = trio.current_time() + self.settings.header_timeout
        for scope in list(self._openings):
            scope.deadline = min(scope.deadline, deadline)

    @property
    def connection_count(self) -> int:
        """Connections being served now."""
        return len(self._connections) + len(self._http2_connections)


class _Connection:
    """One connection's state, shared by its reader, writer and handler tasks. Slotted: an idle
    keep-alive connection costs memory for as long as it stays open.

    ``_pending`` holds the exchanges in flight, in request order (at most ``max_pipeline``, and
    a list: an empty deque would cost an idle connection 700 bytes); ``_lone`` is the one among
    them whose handler task writes its own response (see :meth:`_dispatch`)."""

    __slots__ = (
        "_channel",
        "_handler",
        "_hook",
        "_settings",
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
        "_pending",
        "_lone",
        "_barrier",
        "_stopping",
        "_reader_done",
        "_eof",
        "_aborted",
        "_closing_sent",
        "_writer_returned",
        "_wire",
        "_outbox",
        "_scheme",
        "_client",
        "_server",
        "_upgrade",
        "_h2c",
    )

    def __init__(self, channel: HTTPChannel, stream: trio.abc.Stream, received: bytes = b"") -> None:
        self._channel = channel
        self._handler = channel.handler
        self._hook = channel.on_response
        self._settings = channel.settings
        self._parser = RequestParser(self._settings)
        if received:
            self._parser.receive_data(received)
        self._slots = trio.Semaphore(self._settings.max_pipeline)
        self._queue_send, self._queue_receive = trio.open_memory_channel[Exchange](self._settings.max_pipeline)
        self._nursery: trio.Nursery | None = None
        self._handlers_running = 0
        self._handlers_done: trio.Event | None = None
        self._read_scope = trio.CancelScope()
        self._read_phase: object = None
        self._body_exchange: Exchange | None = None
        self._pending: list[Exchange] = []
        self._lone: Exchange | None = None
        self._barrier = False
        self._stopping = False
        self._reader_done = False
        self._eof = False
        self._aborted = False
        self._closing_sent = False
        self._writer_returned = False
        self._scheme, self._client, self._server = addresses(stream)
        self._wire = Wire(stream)
        self._outbox = Outbox(self._wire, self._settings.send_timeout, self._abort, self._hook, self._client)
        self._upgrade: RequestHead | None = None
        self._h2c: Upgraded | None = None

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._outbox.deadline_scope = nursery.cancel_scope
                if self._channel._shutting_down:
                    self._stopping = True
                nursery.start_soon(self._read_requests)
                await self._write_responses()
                self._writer_returned = True
                await self._finish_handlers()
                nursery.cancel_scope.cancel()
            if not self._writer_returned and not self._aborted:
                self._abort("it did not read a response within send_timeout")
            if self._upgrade is not None and not self._closing_sent and not self._aborted:
                await self._serve_upgrade()
            if self._closing_sent and not self._aborted and not self._eof:
                await self._wire.linger(self._settings.linger_timeout)
            if self._h2c is not None:
                await self._channel._serve_http2(self._wire.stream, self._parser.trailing_data, self._h2c)
        except Exception:
            logger.exception("internal error while serving %s; the connection is closed", self._peer())
        finally:
            self._outbox.cut_short()
            await trio.aclose_forcefully(self._wire.stream)

    async def _finish_handlers(self) -> None:
        """The last response is written: stop the reader and, unless a request was left
        unanswered (dropQueuedRequests: everything is cancelled), let the handlers still running
        finish what they do after their response (an ASGI app's background tasks)."""
        self._read_scope.cancel()
        if not self._pending and self._handlers_running:
            self._handlers_done = trio.Event()
            await self._handlers_done.wait()

    def stop_reading(self) -> None:
        """Take no new request; close at once if idle between requests (graceful shutdown). A
        connection that has not had a request yet gets header_timeout for its first, answered
        with Connection: close: its client connected to send one, and closing would lose it."""
        self._stopping = True
        if self._read_phase is _IDLE:
            self._read_scope.cancel()
        elif self._read_phase is _FIRST:
            deadline = trio.current_time() + self._settings.header_timeout
            self._read_scope.deadline = min(self._read_scope.deadline, deadline)

    def _client_gone(self, reason: str) -> _ClientGone:
        """Abort first, so that a handler reading the body sees Cancelled, not a short body."""
        self._abort(reason)
        return _ClientGone(reason)

    def _abort(self, reason: str) -> None:
        """End the connection at once: every task of it is cancelled, and every request in
        flight is told its client is gone (for code shielded from the cancellation)."""
        if self._aborted:
            return
        logger.debug("aborting the connection of %s: %s", self._peer(), reason)
        self._aborted = True
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        for exchange in self._pending:
            exchange.tell_client_left()

    def _tell_client_left(self) -> None:
        """The client's side ended: every request in flight learns it (a pending ASGI
        ``receive()`` gives ``http.disconnect``). Their answers are still written: a client that
        only half-closed reads them."""
        self._eof = True
        for exchange in self._pending:
            exchange.tell_client_left()

    # The reader task ---------------------------------------------------------------------------

    async def _read_requests(self) -> None:
        """Read and dispatch requests until one closes the connection, the client's side ends or
        a timeout passes; then watch for the client leaving while handlers still run."""
        try:
            error = await self._read_until_last()
            await self._settle_lone()
            if error is not None:
                await self._refuse(error)
        except _ClientGone:
            return
        finally:
            self._reader_done = True
            self._queue_send.close()
        await self._watch_for_eof()

    async def _read_until_last(self) -> ProtocolError | None:
        """Read requests; the error that ended them, if one is to be answered."""
        try:
            with self._read_scope:
                first = True
                while await self._read_request(first) and not self._stopping:
                    first = False
        except ProtocolError as error:
            return error
        if self._read_scope.cancelled_caught and not self._closing_sent and not self._writer_returned:
            return self._timed_out()
        return None

    def _timed_out(self) -> ProtocolError | None:
        """The read scope's deadline passed (or shutdown cancelled an idle read)."""
        if self._read_phase is _HEAD:
            return ProtocolError(408, "the request head did not arrive within header_timeout")
        exchange = self._body_exchange
        if self._read_phase is _BODY and exchange is not None:
            self._fail_body(exchange, ProtocolError(408, "the request body stalled for longer than body_timeout"))
        return None

    async def _watch_for_eof(self) -> None:
        """No request is read any more, but handlers may still run: read and discard what the
        client sends (nothing, if it keeps to HTTP) so as to tell them when it leaves. The
        writer's end cancels this with the nursery."""
        if self._eof or not self._pending:
            return
        try:
            while await self._wire.receive_some():
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        self._tell_client_left()

    async def _read_request(self, first: bool) -> bool:
        """Read and dispatch one request; whether the connection may carry another. (Its own
        frame, so that nothing of an answered request stays referenced while the next is
        awaited: an idle connection holds no request.) An upgrade to WebSocket ends the reading
        once every response before it is written."""
        head = await self._next_head(first)
        if head is None:
            return False
        if head.upgrade and self._upgrades_to_h2c(head):
            return False
        if head.upgrade and self._upgrades_to_websocket(head):
            if self._pending:
                await self._pending[-1].wait_done()
            self._upgrade = head
            return False
        exchange = await self._dispatch(head)
        await self._feed_body(exchange)
        return head.keep_alive and exchange.body_error is None and not self._closing_sent

    async def _next_head(self, first: bool) -> RequestHead | None:
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
            elif self._pending:
                await self._receive(math.inf, _IDLE)
            elif first:
                idle = self._settings.header_timeout if self._stopping else self._settings.timeout
                await self._receive(trio.current_time() + idle, _FIRST)
            else:
                await self._receive(trio.current_time() + self._settings.timeout, _IDLE)
            if self._stopping and not parser.has_partial_request:
                return None

    async def _receive(self, deadline: float, phase: object) -> None:
        """Read once into the parser. The read scope's deadline is ``deadline`` only while
        reading: its expiry ends the reader, and ``phase`` says what timed out."""
        scope = self._read_scope
        if scope.deadline != deadline:
            scope.deadline = deadline
        self._read_phase = phase
        try:
            data = await self._wire.receive_some()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            raise self._client_gone(f"reading failed: {error!r}") from None
        if scope.deadline != math.inf:
            scope.deadline = math.inf
        self._read_phase = None
        self._parser.receive_data(data)
        if not data:
            self._tell_client_left()

    async def _dispatch(self, head: RequestHead) -> Exchange:
        """Start answering ``head`` in a handler task of its own; the reader goes on reading.

        A request without a body that comes when nothing is in flight is *lone*: its handler
        task writes the response itself, sparing the writer task a wake-up (the common
        keep-alive case). Before anything else is queued for the writer, a lone exchange is
        settled, so responses still go out in request order."""
        pending = self._pending
        if (not head.safe or self._barrier) and pending:
            await pending[-1].wait_done()
        await self._settle_lone()
        lone = not head.has_body and not pending and self._outbox.idle and not self._parser.has_buffered_data
        if not lone:
            await self._take_slot()
        exchange = self._exchange(head)
        self._barrier = not head.safe or head.http_version == "1.0"
        if lone:
            exchange.lone = True
            self._lone = exchange
            pending.append(exchange)
        else:
            self._enqueue(exchange)
        self._handlers_running += 1
        assert self._nursery is not None
        self._nursery.start_soon(self._respond, exchange)
        return exchange

    async def _settle_lone(self) -> None:
        """Make the writer answer the lone exchange if its handler has not answered yet (it is
        queued before anything else); if its handler is writing its answer, let it finish."""
        lone = self._lone
        if lone is None:
            return
        if lone.progress is Progress.AWAITED:
            self._hand_to_writer(lone)
        else:
            await lone.wait_done()

    def _hand_to_writer(self, lone: Exchange) -> None:
        """The lone exchange goes to the writer's queue after all (first in it: nothing else is
        in flight), taking a pipeline slot, which is free for the same reason."""
        lone.lone = False
        self._lone = None
        self._slots.acquire_nowait()
        lone.holds_slot = True
        self._queue_send.send_nowait(lone)

    async def _take_slot(self) -> None:
        """A pipeline slot for an exchange the writer answers: at max_pipeline the reader waits
        here, not reading, so TCP pushes back on the client."""
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await self._slots.acquire()

    def _exchange(self, head: RequestHead | None, *, refused: bool = False) -> Exchange:
        """The exchange of ``head``, with its request (none when the head could not be parsed;
        one without a body when the request is refused)."""
        exchange = Exchange(self, head, trio.current_time() if self._hook is not None else 0.0)
        if head is None:
            return exchange
        body: RequestBody
        if head.has_body and not refused:
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

    def _enqueue(self, exchange: Exchange) -> None:
        exchange.holds_slot = True
        self._pending.append(exchange)
        self._queue_send.send_nowait(exchange)

    async def _feed_body(self, exchange: Exchange) -> None:
        send = exchange.body_send
        if send is None:
            self._expect_end()
            return
        with send:
            if exchange.head is not None and exchange.head.expects_continue:
                while not exchange.continue_wanted and exchange.response is None:
                    await exchange.wait_ready()
            self._body_exchange = exchange
            try:
                await self._pump_body(exchange, send)
                self._parser.start_next_request()
            except ProtocolError as error:
                self._fail_body(exchange, error)
            finally:
                if not exchange.body_complete and exchange.body_error is None and exchange.request is not None:
                    exchange.request.body._fail(ClientDisconnected("the connection ended before the body was complete"))
            self._body_exchange = None

    def _fail_body(self, exchange: Exchange, error: ProtocolError) -> None:
        """The body failed: until its head goes out, the response is the body's error, whatever
        the handler answers; a streamed response already under way is cut (abort)."""
        logger.debug("bad request body from %s: %s", self._peer(), error.message)
        exchange.fail_body(error)
        assert exchange.request is not None
        exchange.request.body._fail(error)
        body = exchange.response.body if exchange.response is not None else b""
        if exchange.progress in (Progress.AWAITED, Progress.GIVEN):
            exchange.set_response(error_response(error.status, error.message))
            if not isinstance(body, _WHOLE):
                assert self._nursery is not None
                self._nursery.start_soon(_close_iterable, body)
        elif exchange.progress is Progress.SENDING and not isinstance(body, _WHOLE):
            self._abort("the request body failed while its streamed response was being sent")

    async def _pump_body(self, exchange: Exchange, send: trio.MemorySendChannel[bytes]) -> None:
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
        """Answer ``error`` after every earlier response; the connection closes after it."""
        logger.debug("refusing a request from %s: %s %s", self._peer(), error.status, error.message)
        await self._take_slot()
        exchange = self._exchange(self._parser.refused_head, refused=True)
        exchange.set_response(error_response(error.status, error.message))
        self._enqueue(exchange)

    # Handler tasks -----------------------------------------------------------------------------

    async def _respond(self, exchange: Exchange) -> None:
        try:
            response = await self._call_handler(exchange)
            if exchange.progress is Progress.AWAITED:
                if exchange.lone:
                    await self._deliver_now(exchange, response)
                else:
                    exchange.set_response(response)
        finally:
            self._handlers_running -= 1
            if self._handlers_running == 0 and self._handlers_done is not None:
                self._handlers_done.set()

    async def _respond_early(self, exchange: Exchange, response: Response) -> None:
        """Give ``response`` before the handler returns (what it returns is then ignored). A
        lone exchange's bytes are written by this task at once; a stream goes to the writer,
        since this task is the one producing it."""
        if not exchange.lone:
            exchange.set_response(response)
        elif isinstance(response.body, _WHOLE):
            await self._deliver_now(exchange, response)
        else:
            exchange.set_response(response)
            self._hand_to_writer(exchange)

    async def _deliver_now(self, exchange: Exchange, response: Response) -> None:
        exchange.response = response
        exchange.progress = Progress.GIVEN
        await self._deliver(exchange)
        await self._outbox.flush()

    async def _call_handler(self, exchange: Exchange) -> Response:
        assert exchange.request is not None
        try:
            response = await self._handler(exchange.request)
            if not isinstance(response, Response):
                raise TypeError(f"the handler returned {response!r}, not a Response")
        except ProtocolError as error:
            return error_response(error.status, error.message)
        except ClientDisconnected as error:
            if exchange.body_error is None:
                self._abort(f"the handler stopped, the client being gone: {error}")
            return error_response(400, "the request could not be completed")
        except Exception:
            logger.exception("the handler failed on %r from %s", exchange.request, self._peer())
            return error_response(500, "the server failed to produce a response")
        return response

    # Writing (the writer runs in the connection's own task) ----------------------------------

    async def _write_responses(self) -> None:
        """Send every response in request order, until one closes the connection. Responses
        that are ready one after another go out in one write (pipelining's whole point)."""
        while not self._closing_sent and await self._write_next():
            pass
        await self._outbox.flush()

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
            await self._outbox.flush()
            try:
                exchange = await receive.receive()
            except trio.EndOfChannel:
                return False
        await self._deliver(exchange)
        return True

    async def _deliver(self, exchange: Exchange) -> None:
        response = exchange.response
        if response is None:
            await self._outbox.flush()
            response = await self._wait_for_response(exchange)
        keep_alive = await self._send_response(exchange, response)
        popped = self._pending.pop(0)
        assert popped is exchange
        if exchange.holds_slot:
            self._slots.release()
        exchange.mark_done()
        request = exchange.request
        if request is not None:
            request.body._abandon()
            request._exchange = None
        if exchange is self._lone:
            self._lone = None
        self._outbox.finished(exchange)
        if not self._pending:
            self._arm_idle_timer()
        if not keep_alive:
            self._closing_sent = True
            self._read_scope.cancel()

    async def _wait_for_response(self, exchange: Exchange) -> Response:
        """Wait for the handler's response, sending ``100 Continue`` if it reads the body first."""
        while exchange.response is None:
            await exchange.wait_ready()
            if exchange.continue_wanted and not exchange.continue_sent and exchange.response is None:
                exchange.continue_sent = True
                await self._outbox.send(None, _CONTINUE)
                exchange.ready = None
        return exchange.response

    def _arm_idle_timer(self) -> None:
        if self._read_phase is _IDLE:
            self._read_scope.deadline = trio.current_time() + self._settings.timeout

    async def _send_response(self, exchange: Exchange, response: Response) -> bool:
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
        exchange.progress = Progress.SENDING
        self._outbox.started(exchange)
        body = response.body
        if not isinstance(body, _WHOLE):
            await self._send_stream(exchange, serialized, body)
            return serialized.keep_alive
        self._outbox.put(exchange, serialized.data)
        if serialized.framing is not Framing.NONE and body:
            self._outbox.put(exchange, bytes(body))
        if self._outbox.size > COALESCE_LIMIT:
            await self._outbox.flush()
        return serialized.keep_alive

    def _may_persist(self, exchange: Exchange) -> bool:
        head = exchange.head
        if head is None or not head.keep_alive or exchange.body_error is not None:
            return False
        if (self._stopping or self._reader_done) and len(self._pending) == 1:
            return False
        if exchange.body_complete:
            return True
        if head.expects_continue and not exchange.continue_sent:
            return False
        remaining = self._parser.body_remaining
        return remaining is not None and remaining <= self._settings.max_discard

    async def _send_stream(self, exchange: Exchange, head: ResponseHead, body: AsyncIterable[bytes]) -> None:
        await self._outbox.send(exchange, head.data)
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
                await self._outbox.send(exchange, chunk(data) if head.framing is Framing.CHUNKED else data)
                await trio.lowlevel.checkpoint()
        except ClientDisconnected as error:
            self._abort(f"the response body stream ended early: {error}")
            await trio.lowlevel.checkpoint()
        except Exception:
            logger.exception("the response body stream failed; aborting the connection of %s", self._peer())
            self._abort("response body stream failed")
            await trio.lowlevel.checkpoint()
        if head.length is not None and sent < head.length:
            logger.error("the response body ended %d bytes short of its Content-Length", head.length - sent)
            self._abort("response body shorter than its Content-Length")
            await trio.lowlevel.checkpoint()
        if head.framing is Framing.CHUNKED:
            await self._outbox.send(exchange, LAST_CHUNK)

    def _upgrades_to_h2c(self, head: RequestHead) -> bool:
        """A lone request without a body asking ``Upgrade: h2c``: the connection goes on in
        HTTP/2 once this one has ended (``run``), the request answered there as stream 1."""
        if not self._settings.h2 or head.has_body or self._pending or head.http_version != "1.1":
            return False
        settings = h2c_settings(head.headers)
        if settings is None:
            return False
        self._expect_end()
        self._h2c = Upgraded(head.method, head.target, list(head.headers), settings)
        return True

    def _upgrades_to_websocket(self, head: RequestHead) -> bool:
        return self._channel.websocket_handler is not None and is_websocket_upgrade(
            head.http_version, Headers(head.headers)
        )

    async def _serve_upgrade(self) -> None:
        """Hand the connection to the WebSocket layer, once the reader stopped at an upgrade
        request and every response before it is written: nothing after the request's head was
        parsed as HTTP, and the bytes that arrived after it are the WebSocket's first."""
        head, handler = self._upgrade, self._channel.websocket_handler
        assert head is not None and handler is not None
        request = Request(
            head.method,
            head.target,
            head.http_version,
            Headers(head.headers),
            RequestBody(None),
            scheme=self._scheme,
            client=self._client,
            server=self._server,
        )
        await serve_upgrade(self._wire.stream, request, self._parser.trailing_data, self._settings, handler)

    def _peer(self) -> str:
        return format_address(self._client) if self._client is not None else "an unknown peer"


class _ClientGone(Exception):
    """The client vanished; nothing more can be said to it."""


async def _close_iterable(body: AsyncIterable[bytes]) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()
