"""The reader of one HTTP/1.1 connection [lineReceived, rawDataReceived]: it parses requests, times
them, dispatches each to a handler task, feeds bodies, and refuses what breaks the rules.

It moves the connection's ``read`` state (``state.py``), which says what its one timer, a cancel
scope around each read of the socket, means: ``timeout`` while idle, ``header_timeout`` for a
head, ``body_timeout`` for each read of a body.

The idle timer, the settling of an idle connection to its one task and the quiet wait of that
task are ``quiet.py``'s (:class:`QuietReader`, this reader's base); this reader settles by
returning when its read scope expires early and ``_may_settle`` says so. How an exchange is
made from a head, and what a failed body does to it, are ``exchanges.py``'s.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import trio

from .._errors import ClientDisconnected, ProtocolError
from .._exchange import Exchange
from .._headers import Headers
from .._response import error_response
from .._state import AWAITED, EXPECTED, FAILED, LONE, QUEUED, STREAMING, advance
from ..http2 import Upgraded, h2c_settings
from ..websocket import is_websocket_upgrade
from .exchanges import fail_body, new_exchange
from .head import RequestHead
from .parser import CLOSED, END, NEED_DATA, TRUNCATED
from .quiet import SETTLE_AFTER, SETTLE_AFTER_LIMIT, QuietReader
from .state import BODY, BUSY, DONE, EOF, FIRST, HEAD, IDLE, OPEN, READ, SETTLING, SHAPE, waits_for_earlier

if TYPE_CHECKING:
    from .connection import HTTP1Connection

__all__ = ["Reader", "SETTLE_AFTER", "SETTLE_AFTER_LIMIT"]

logger = logging.getLogger("trio_httpchannel")


class Reader(QuietReader):
    """Reads one connection's requests, all the time a request is in flight (within the
    pipeline's bound), so that a handler learns when its client leaves.

    For each head it takes a pipeline slot, builds the exchange and its request, queues it for
    the writer (unless it is lone) and starts its handler task; then it feeds the body, if any,
    through a zero-capacity memory channel, reading the socket only as fast as the handler takes
    chunks. After the last request it will parse it goes on reading, and discarding, to notice
    the client leaving while handlers still run. ``upgrade`` is the head of the WebSocket
    upgrade request it stopped at, if any; ``h2c`` the request that asked to go on in HTTP/2.
    ``received`` are bytes read before it started (to see whether the client spoke HTTP/2).

    Its timer is the read scope (``_scope``, see :class:`QuietReader`)."""

    __slots__ = ("_body_exchange", "_parked", "upgrade", "h2c")

    def __init__(self, connection: HTTP1Connection, received: bytes) -> None:
        super().__init__(connection, received)
        self._body_exchange: Exchange[RequestHead] | None = None
        self._parked: trio.lowlevel.Task | None = None
        """The reader task while it waits for a lone request's handler to run its first step."""
        self.upgrade: RequestHead | None = None
        self.h2c: Upgraded | None = None

    # What other tasks ask of the reader -------------------------------------------------------

    def shut_down(self) -> None:
        """The channel shuts down: take no new request; close at once if idle between requests.
        A connection that has not had a request yet gets header_timeout for its first, answered
        with Connection: close: its client connected to send one, and closing would lose it."""
        read = self._connection.read
        if read is IDLE:
            self._scope.cancel()
        elif read is FIRST:
            deadline = trio.current_time() + self._settings.header_timeout
            self._scope.deadline = min(self._scope.deadline, deadline)

    def cancel(self) -> None:
        """Read no more requests: the response just delivered closes the connection, or every
        response is written (dropQueuedRequests)."""
        self._scope.cancel()

    # The reader task ---------------------------------------------------------------------------

    async def run(self) -> None:
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
            self._done()
        await self._watch_for_eof()

    def _done(self) -> None:
        """No request will be read any more, or none by this task (the connection settles): the
        writer's queue ends after what is in it."""
        connection = self._connection
        if connection.shape is not SETTLING:
            connection.read = advance(READ, connection.read, EOF if self.parser.closed else DONE)
        connection.writer.close_queue()

    async def _read_until_last(self) -> ProtocolError | None:
        """Read requests; the error that ended them, if one is to be answered. Returns too when
        the connection settles (its ``shape`` is then ``SETTLING``)."""
        connection = self._connection
        channel = connection.channel
        while True:
            try:
                with self._scope:
                    while await self._read_request() and not channel.shutting_down:
                        pass
            except ProtocolError as error:
                return error
            except _ReadAgain:
                self._scope = trio.CancelScope()
                continue
            if not self._scope.cancelled_caught or connection.write is not OPEN:
                return None
            if not self._expired_early():
                return self._timed_out()
            if self._may_settle():
                connection.shape = advance(SHAPE, BUSY, SETTLING)
                return None
            self._scope = trio.CancelScope()

    def _timed_out(self) -> ProtocolError | None:
        """The read scope's deadline passed (or shutdown cancelled an idle read)."""
        read = self._connection.read
        if read is HEAD:
            return ProtocolError(408, "the request head did not arrive within header_timeout")
        exchange = self._body_exchange
        if read is BODY and exchange is not None:
            fail_body(
                self._connection, exchange, ProtocolError(408, "the request body stalled for longer than body_timeout")
            )
        return None

    async def _watch_for_eof(self) -> None:
        """No request is read any more, but handlers may still run: read and discard what the
        client sends (nothing, if it keeps to HTTP) so as to tell them when it leaves. The
        writer's end cancels this with the nursery."""
        connection = self._connection
        if connection.read is EOF or not connection.pending:
            return
        try:
            while await self._wire.receive_some():
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        connection.read = advance(READ, connection.read, EOF)
        connection.tell_client_left()

    async def _read_request(self) -> bool:
        """Read and dispatch one request; whether the connection may carry another. (Its own
        frame, so that nothing of an answered request stays referenced while the next is
        awaited: an idle connection holds no request.) An upgrade to WebSocket ends the reading
        once every response before it is written."""
        head = await self._next_head()
        if head is None:
            return False
        if head.upgrade and self._upgrades_to_h2c(head):
            return False
        if head.upgrade and self._upgrades_to_websocket(head):
            pending = self._connection.pending
            if pending:
                self._clear_timer()
                await pending[-1].wait_done()
            self.upgrade = head
            return False
        exchange = await self._dispatch(head)
        if exchange.body_send is None:
            self._expect_end()
            if exchange.dispatch is LONE:
                await self._let_lone_answer()
        else:
            await self._feed_body(exchange)
        return head.keep_alive and exchange.body is not FAILED and self._connection.write is OPEN

    async def _next_head(self) -> RequestHead | None:
        """The next request's head, once it is whole (``read`` is then ``HEAD``); ``None`` when
        no request follows: the client's side ended between requests, or a shutdown."""
        connection = self._connection
        parser = self.parser
        started: float | None = None
        while True:
            event = parser.next_event()
            if isinstance(event, RequestHead):
                if connection.read is not HEAD:
                    connection.read = advance(READ, connection.read, HEAD)
                self._idle_deadline = None
                return event
            if event is CLOSED:
                return None
            if started is None and parser.has_partial_request:
                started = trio.current_time()
                connection.read = advance(READ, connection.read, HEAD)
            if started is not None:
                await self._receive(started + self._settings.header_timeout)
            elif connection.read is FIRST:
                await self._receive(trio.current_time() + self._first_wait())
            elif connection.pending:
                await self._receive(None)
            else:
                self._time_idle_wait()
                await self._receive(None)
                self._idle_deadline = None
            if connection.channel.shutting_down and not parser.has_partial_request:
                return None

    async def _receive(self, deadline: float | None) -> None:
        """Read once into the parser, within ``deadline``: its expiry ends the reader, and the
        ``read`` state says what timed out. ``None``: the deadline is left, not moved (at some
        cost): the idle wait's (``_time_idle_wait``), or with a request in flight (no timer)
        the last read's, whose expiry makes the reader read on in a new scope
        (``_expired_early``). It is left after the read too, until the reader waits on
        something else than the socket (``_clear_timer``)."""
        scope = self._scope
        if deadline is not None and scope.deadline != deadline:
            scope.deadline = deadline
        try:
            data = await self._wire.receive_some()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            raise self._client_gone(f"reading failed: {error!r}") from None
        self._received(data)
        if scope.cancel_called and (self._connection.read is IDLE or self._connection.read is FIRST):
            raise _ReadAgain

    async def _let_lone_answer(self) -> None:
        """Let a lone request's handler run its first step before reading on. Most answer in
        it, and the read then finds the client's next request without waiting (no re-arming of
        the socket's wait, no sleep in ``epoll_wait``) unless the client is slower than us; a
        handler still running waits on something, and the reader waits for the socket first,
        so a client leaving is noticed. The handler task wakes the reader as it starts
        (``handler_started``): the reader runs in the next batch, after that step."""
        self._parked = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self._unpark)
        if self._connection.lone is None:
            self._wire.expect_bytes()

    def _unpark(self, raise_cancel: object) -> trio.lowlevel.Abort:
        self._parked = None
        return trio.lowlevel.Abort.SUCCEEDED

    def handler_started(self) -> None:
        """A handler task runs its first step: a reader waiting for that goes on next batch."""
        parked = self._parked
        if parked is not None:
            self._parked = None
            trio.lowlevel.reschedule(parked)

    def _clear_timer(self) -> None:
        """No read timer while the reader waits on something else than the socket (an earlier
        response, a pipeline slot, a handler taking a body chunk): the deadline of the last read
        must not expire there."""
        scope = self._scope
        if scope.deadline != math.inf:
            scope.deadline = math.inf

    def _client_gone(self, reason: str) -> _ClientGone:
        """Abort first, so that a handler reading the body sees Cancelled, not a short body."""
        self._connection.abort(reason)
        return _ClientGone(reason)

    # Dispatch ----------------------------------------------------------------------------------

    async def _dispatch(self, head: RequestHead) -> Exchange[RequestHead]:
        """Start answering ``head`` in a handler task of its own, once the order of handlers
        allows (``waits_for_earlier``); the reader goes on reading.

        A request without a body that comes when nothing is in flight is *lone*: its handler
        task writes the response itself, sparing the writer task a wake-up (the common
        keep-alive case). Before anything else is queued for the writer, a lone exchange is
        settled, so responses still go out in request order."""
        connection = self._connection
        pending = connection.pending
        if pending or head.has_body or not connection.outbox.idle or self.parser.has_buffered_data:
            self._clear_timer()  # not lone: it may wait below
        if pending and waits_for_earlier(head, pending[-1].head):
            await pending[-1].wait_done()
        if connection.lone is not None:
            await self._settle_lone()
        lone = not head.has_body and not pending and connection.outbox.idle and not self.parser.has_buffered_data
        if not lone:
            await connection.writer.take_slot()
        exchange = new_exchange(self._connection, head, LONE if lone else QUEUED)
        if lone:
            connection.lone = exchange
            pending.append(exchange)
        else:
            connection.writer.enqueue(exchange)
        connection.start_handler(exchange)
        return exchange

    async def _settle_lone(self) -> None:
        """Make the writer answer the lone exchange if its handler has not answered yet (it is
        queued before anything else); if its handler is writing its answer, let it finish."""
        lone = self._connection.lone
        if lone is None:
            return
        if lone.progress is AWAITED:
            self._connection.writer.hand_over(lone)
        else:
            await lone.wait_done()

    def _upgrades_to_h2c(self, head: RequestHead) -> bool:
        """A lone request without a body asking ``Upgrade: h2c``: the connection goes on in
        HTTP/2 once this one has ended, the request answered there as stream 1."""
        connection = self._connection
        if not self._settings.h2 or head.has_body or connection.pending or head.http_version != "1.1":
            return False
        settings = h2c_settings(head.headers)
        if settings is None:
            return False
        self._expect_end()
        self.h2c = Upgraded(head.method, head.target, list(head.headers), settings)
        return True

    def _upgrades_to_websocket(self, head: RequestHead) -> bool:
        return self._connection.channel.websocket_handler is not None and is_websocket_upgrade(
            head.http_version, Headers(head.headers)
        )

    async def _refuse(self, error: ProtocolError) -> None:
        """Answer ``error`` after every earlier response; the connection closes after it."""
        connection = self._connection
        logger.debug("refusing a request from %s: %s %s", connection.peer(), error.status, error.message)
        await connection.writer.take_slot()
        exchange = new_exchange(self._connection, self.parser.refused_head, QUEUED, refused=True)
        exchange.set_response(error_response(error.status, error.message))
        connection.writer.enqueue(exchange)

    # Bodies ------------------------------------------------------------------------------------

    async def _feed_body(self, exchange: Exchange[RequestHead]) -> None:
        """Feed the body of ``exchange`` to its handler, after ``100 Continue`` when the client
        waits for it; a body that fails has its error answered instead of the response."""
        connection = self._connection
        send = exchange.body_send
        assert send is not None
        connection.read = advance(READ, connection.read, BODY)
        self._clear_timer()  # a deadline left from the wait for the head must not cancel the body
        with send:
            while exchange.continue_ is EXPECTED and exchange.response is None:
                await exchange.wait_ready()
            self._body_exchange = exchange
            try:
                await self._pump_body(exchange, send)
                self.parser.start_next_request()
                connection.read = advance(READ, connection.read, IDLE)
            except ProtocolError as error:
                fail_body(self._connection, exchange, error)
            finally:
                if exchange.body is STREAMING and exchange.request is not None:
                    exchange.request.body._fail(ClientDisconnected("the connection ended before the body was complete"))
            self._body_exchange = None

    async def _pump_body(self, exchange: Exchange[RequestHead], send: trio.MemorySendChannel[bytes]) -> None:
        parser = self.parser
        discarding = False
        while True:
            event = parser.next_event()
            if event is END:
                exchange.end_body()
                return
            if event is TRUNCATED:
                raise self._client_gone("the client closed its side in the middle of a request body")
            if event is NEED_DATA:
                await self._receive(trio.current_time() + self._settings.body_timeout)
                self._clear_timer()
                continue
            assert isinstance(event, bytes)
            if not discarding:
                try:
                    await send.send(event)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    discarding = True

    def _expect_end(self) -> None:
        event = self.parser.next_event()
        assert event is END
        self.parser.start_next_request()
        connection = self._connection
        connection.read = advance(READ, connection.read, IDLE)


class _ClientGone(Exception):
    """The client vanished; nothing more can be said to it."""


class _ReadAgain(Exception):
    """Bytes came between requests just as the read scope's deadline passed (to settle, or the
    deadline left from an earlier read): they are in the parser, nothing of them is consumed,
    and the reader reads on in a new scope, as the old one would cancel the request they start
    at its first checkpoint (which lost the request: found by a CI run)."""
