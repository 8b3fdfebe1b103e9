"""The writer of one HTTP/1.1 connection [requestWriteFinished]: responses in request order,
``100 Continue`` when a handler reads a body the client holds back, the head and framing of
each response, streamed bodies.

It runs in the connection's own task and takes the queued exchanges one by one; the handler
task of a lone exchange delivers its response through it too (``deliver_now``). Only one task
writes at a time, through the outbox. It moves the connection's ``write`` state
(``state.py``): ``CLOSING`` once a response that closes the connection is delivered, then
``CLOSED``, or ``FINISHED`` when the reader ended first.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING

import trio

from .._errors import ClientDisconnected
from .._exchange import Exchange
from .._file import FileBody
from .._response import (
    WHOLE,
    HeaderPairs,
    Response,
    check_body_chunk,
    close_body,
    error_response,
    takes_trailers,
    trailer_fields,
)
from .._state import CONTINUE, DISPATCH, LONE, PROGRESS, QUEUED, SENDING, WANTED, WRITTEN, advance
from .head import RequestHead
from .outbox import COALESCE_LIMIT
from .serializer import (
    CHUNKED,
    LAST_CHUNK,
    NONE,
    ResponseHead,
    chunk,
    last_chunk,
    serialize_head,
    serialize_informational,
)
from .state import ABORTED, CLOSED, CLOSING, DONE, EOF, FINISHED, OPEN, SETTLING, WRITE, may_persist

if TYPE_CHECKING:
    from .connection import HTTP1Connection

__all__ = ["Writer"]

logger = logging.getLogger("trio_httpchannel")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Writer:
    """Writes one connection's responses, strictly in request order.

    Its queue is the connection's ``pending`` list: the exchanges in flight, in request order,
    all of them queued for the writer but a lone one (which is alone). The reader queues an
    exchange (:meth:`enqueue`) once it has a pipeline slot (:meth:`take_slot`: at
    ``max_pipeline`` exchanges in flight it waits, not reading, so TCP pushes back on the
    client) and says when it has queued its last (:meth:`close_queue`). The writer waits for
    each queued exchange's response and writes it; responses that are ready one after another
    go out in one write (pipelining's whole point). A list and an event made only while the
    writer waits cost an idle connection 2 KB less than a memory channel and a semaphore."""

    __slots__ = ("_connection", "_settings", "_outbox", "_queued")

    def __init__(self, connection: HTTP1Connection) -> None:
        self._connection = connection
        self._settings = connection.settings
        self._outbox = connection.outbox
        self._queued: trio.Event | None = None
        """Set when an exchange is queued or the reader queued its last; made by the writer when
        it waits for that."""

    # The queue ---------------------------------------------------------------------------------

    async def take_slot(self) -> None:
        """Wait for a pipeline slot for an exchange the writer answers: at ``max_pipeline``
        exchanges in flight (the reader settled a lone one first, so all are queued), until the
        first of them is written, not reading meanwhile, so TCP pushes back on the client."""
        pending = self._connection.pending
        while len(pending) >= self._settings.max_pipeline:
            await pending[0].wait_done()

    def enqueue(self, exchange: Exchange[RequestHead]) -> None:
        """Queue ``exchange`` after every exchange in flight."""
        self._connection.pending.append(exchange)
        self._wake()

    def hand_over(self, lone: Exchange[RequestHead]) -> None:
        """The lone exchange goes to the writer after all (first in the queue: nothing else is
        in flight)."""
        lone.dispatch = advance(DISPATCH, lone.dispatch, QUEUED)
        self._connection.lone = None
        self._wake()

    def close_queue(self) -> None:
        """No more exchanges will be queued (``read`` is ``DONE`` or ``EOF``): the writer returns
        once the queue is written."""
        self._wake()

    def _wake(self) -> None:
        queued = self._queued
        if queued is not None:
            self._queued = None
            queued.set()

    # The writer task ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Send every response in request order, until one closes the connection or the queue
        ends; then ``write`` is ``CLOSED`` or ``FINISHED`` (unless the connection was aborted),
        or still ``OPEN`` when the queue ended because the connection settles."""
        connection = self._connection
        while connection.write is OPEN and await self._write_next():
            pass
        await self._outbox.flush()
        write = connection.write
        if write is not ABORTED and connection.shape is not SETTLING:
            connection.write = advance(WRITE, write, CLOSED if write is CLOSING else FINISHED)

    async def _write_next(self) -> bool:
        """Deliver the next queued exchange, flushing what is written first if there is none
        yet; False once the reader queued its last and all of it is written. (Its own frame, so
        that a delivered exchange is not held while the next is awaited.)"""
        connection = self._connection
        pending = connection.pending
        if not pending or pending[0].dispatch is not QUEUED:
            await self._outbox.flush()
            while not pending or pending[0].dispatch is not QUEUED:
                if connection.read is DONE or connection.read is EOF or connection.shape is SETTLING:
                    return False
                self._queued = queued = trio.Event()
                await queued.wait()
        await self.deliver(pending[0])
        return True

    # Delivering a response ---------------------------------------------------------------------

    async def deliver_now(self, exchange: Exchange[RequestHead], response: Response) -> None:
        """Write ``response`` at once, from the handler task of a lone exchange (nothing else
        is in flight or being written)."""
        exchange.set_response(response)
        keep_alive = await self._send_response(exchange, response)
        await self._outbox.flush()
        self._done(exchange, keep_alive)

    async def deliver(self, exchange: Exchange[RequestHead]) -> None:
        """Send the response of ``exchange``, the first in flight, once it is given; then it
        leaves the connection (its slot released, its request told it is over)."""
        response = exchange.response
        if response is None:
            await self._outbox.flush()
            response = await self._wait_for_response(exchange)
        self._done(exchange, await self._send_response(exchange, response))

    def _done(self, exchange: Exchange[RequestHead], keep_alive: bool) -> None:
        """Every byte of ``exchange``'s response is queued (or written): it leaves the
        connection, its slot released, its request told it is over."""
        connection = self._connection
        pending = connection.pending
        popped = pending.pop(0)
        assert popped is exchange
        exchange.mark_done()
        request = exchange.request
        if request is not None:
            request.body._abandon()
            request._exchange = None
        if exchange is connection.lone:
            connection.lone = None
        self._outbox.finished(exchange)
        if not pending:
            connection.reader.arm_idle_timer()
        if not keep_alive and connection.write is not ABORTED:
            connection.write = advance(WRITE, connection.write, CLOSING)
            connection.reader.cancel()

    async def send_informational(self, exchange: Exchange[RequestHead], status: int, headers: HeaderPairs) -> None:
        """Write a 1xx response (``103 Early Hints``) to ``exchange`` now, from its handler's
        task, when it can go before the final one: the request is HTTP/1.1 (an HTTP/1.0 client
        cannot read one), its final response is not given, and it is the first in flight, so
        every response before it is queued already (the 1xx goes after them, in order). Else
        it is dropped. Raises ``ValueError`` for a header that could split the response."""
        data = serialize_informational(status, headers)
        head = exchange.head
        connection = self._connection
        first = exchange.dispatch is LONE or (bool(connection.pending) and connection.pending[0] is exchange)
        if head is not None and head.http_version == "1.1" and first and exchange.response is None:
            if connection.write is OPEN:
                await self._outbox.send(None, data)

    async def _wait_for_response(self, exchange: Exchange[RequestHead]) -> Response:
        """Wait for the handler's response, sending ``100 Continue`` if it reads the body first."""
        while exchange.response is None:
            await exchange.wait_ready()
            if exchange.continue_ is WANTED and exchange.response is None:
                exchange.continue_ = advance(CONTINUE, WANTED, WRITTEN)
                await self._outbox.send(None, _CONTINUE)
                exchange.ready = None
        return exchange.response

    async def _send_response(self, exchange: Exchange[RequestHead], response: Response) -> bool:
        """Serialize and queue (or stream) ``response``; whether the connection persists."""
        head = exchange.head
        if head is None:
            method, version, keep_alive = "GET", "1.1", False
        else:
            connection = self._connection
            method, version = head.method, head.http_version
            keep_alive = may_persist(
                head.keep_alive,
                exchange.body,
                exchange.continue_,
                connection.read,
                connection.channel.shutting_down,
                len(connection.pending),
                connection.reader.parser.body_remaining,
                self._settings.max_discard,
            )
        trailers = response.trailers is not None and head is not None and takes_trailers(head.headers)
        try:
            if isinstance(response.body, FileBody):
                response.body.open()
            serialized = serialize_head(
                response, method=method, http_version=version, keep_alive=keep_alive, takes_trailers=trailers
            )
        except (ValueError, OSError) as error:
            logger.error("the handler's response to %r cannot be sent: %s", exchange.request, error)
            if isinstance(response.body, FileBody):
                response.body.close()
            response = error_response(500, "the server produced an invalid response")
            serialized = serialize_head(response, method=method, http_version=version, keep_alive=False)
        exchange.status = response.status
        exchange.progress = advance(PROGRESS, exchange.progress, SENDING)
        self._outbox.started(exchange)
        body = response.body
        if isinstance(body, FileBody):
            try:
                await self._send_file(exchange, serialized, body)
            finally:
                body.close()
        elif not isinstance(body, WHOLE):
            await self._send_stream(exchange, serialized, body)
            if serialized.framing is CHUNKED:
                await self._outbox.send(exchange, await self._last_chunk(response, trailers))
        else:
            self._outbox.put(exchange, serialized.data)
            if serialized.framing is CHUNKED:
                if body:
                    self._outbox.put(exchange, chunk(bytes(body)))
                self._outbox.put(exchange, await self._last_chunk(response, trailers))
            elif serialized.framing is not NONE and body:
                self._outbox.put(exchange, bytes(body))
            if self._outbox.size > COALESCE_LIMIT:
                await self._outbox.flush()
        return serialized.keep_alive

    async def _last_chunk(self, response: Response, trailers: bool) -> bytes:
        """The end of ``response``'s chunked body, with its trailers when it has them and
        ``trailers`` (the client takes them). Trailers set after the response was made that
        cannot be sent abort the connection: the body went out without its end."""
        if response.trailers is None or not trailers:
            return LAST_CHUNK
        try:
            return last_chunk(trailer_fields(response.trailers))
        except (ValueError, TypeError) as error:
            logger.error("the trailers of the response to %s cannot be sent: %s", self._connection.peer(), error)
            await self._abort_now("invalid trailers")
            return b""

    async def _send_file(self, exchange: Exchange[RequestHead], head: ResponseHead, body: FileBody) -> None:
        """Write a file body: by the kernel on a plain socket, else read and written in chunks,
        each as the client takes it. A file that ended before its Content-Length aborts the
        connection (never a shorter body as if complete)."""
        outbox = self._outbox
        if head.framing is NONE:
            await outbox.send(exchange, head.data)
            return
        assert head.length is not None
        if outbox.can_sendfile:
            outbox.put(exchange, head.data)
            sent = await outbox.send_file(exchange, body.open(), head.length)
        else:
            await outbox.send(exchange, head.data)
            sent = 0
            async for data in body:
                sent += len(data)
                await outbox.send(exchange, data)
                await trio.lowlevel.checkpoint()
        if sent < head.length:
            logger.error("the file %r ended %d bytes short of its Content-Length", body.path, head.length - sent)
            await self._abort_now("response file shorter than its Content-Length")

    async def _send_stream(
        self, exchange: Exchange[RequestHead], head: ResponseHead, body: AsyncIterable[bytes]
    ) -> None:
        """Write a streamed body as the client takes it; a stream that fails, ends early or
        breaks its Content-Length aborts the connection (never a complete wrong response)."""
        outbox = self._outbox
        await outbox.send(exchange, head.data)
        if head.framing is NONE:
            await close_body(body)
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
                await outbox.send(exchange, chunk(data) if head.framing is CHUNKED else data)
                await trio.lowlevel.checkpoint()
        except ClientDisconnected as error:
            await self._abort_now(f"the response body stream ended early: {error}")
        except Exception:
            logger.exception("the response body stream failed; aborting the connection of %s", self._connection.peer())
            await self._abort_now("response body stream failed")
        if head.length is not None and sent < head.length:
            logger.error("the response body ended %d bytes short of its Content-Length", head.length - sent)
            await self._abort_now("response body shorter than its Content-Length")

    async def _abort_now(self, reason: str) -> None:
        """Abort, and be cancelled with the connection here and now."""
        self._connection.abort(reason)
        await trio.lowlevel.checkpoint()
