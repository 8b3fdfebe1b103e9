"""One HTTP/1.1 connection: its nursery, its states, the exchanges in flight, the handler tasks,
and how it ends (an abort, the lingering close, an upgrade to WebSocket or to HTTP/2).

A connection with work is a nursery of tasks: the reader (``reader.py``), which parses requests
and starts a handler task for each; the writer (``writer.py``), which runs in the connection's
own task and writes the responses in request order; and the handler tasks. A quiet one (no
request yet, or idle for ``SETTLE_AFTER`` between requests) is its own task alone, waiting for
bytes. Their shared state is here: the machines of ``state.py`` (``read``, moved by the reader,
``write``, moved by the writer and by an abort, and ``shape``) and the exchanges in flight. See
``docs/design.md`` for the task diagram.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

import trio

from .._addresses import addresses, peer_name
from .._exchange import Exchange
from .._handling import call_handler
from .._headers import Headers
from .._request import Request, RequestBody
from .._response import WHOLE, HeaderPairs, Response
from .._state import AWAITED, LONE, advance
from .._tls import tls_info
from ..websocket import serve_upgrade
from .head import RequestHead
from .outbox import Outbox
from .reader import Reader
from .serializer import serialize_head
from .state import ABORT, ABORTED, BUSY, FINISHED, FIRST, LINGER, OPEN, QUIET, SETTLING, SHAPE, UPGRADE, WRITE, ending
from .wire import Wire
from .writer import Writer

if TYPE_CHECKING:
    from .._channel import HTTPChannel

__all__ = ["HTTP1Connection", "Handoff", "refuse"]

logger = logging.getLogger("trio_httpchannel")


class HTTP1Connection:
    """One connection's state, shared by its reader, writer and handler tasks. Slotted: an idle
    keep-alive connection costs memory for as long as it stays open.

    ``pending`` holds the exchanges in flight, in request order (a list: an empty deque would
    cost an idle connection 700 bytes); ``lone`` is the one among them whose handler task
    writes its own response (``Dispatch.LONE``). It is the :class:`Carrier` of its exchanges."""

    __slots__ = (
        "channel",
        "settings",
        "handler",
        "hook",
        "wire",
        "outbox",
        "nursery",
        "read",
        "write",
        "shape",
        "pending",
        "lone",
        "scheme",
        "client",
        "server",
        "tls",
        "reader",
        "writer",
        "_handlers_running",
        "_handlers_done",
    )

    def __init__(self, channel: HTTPChannel, stream: trio.abc.Stream, received: bytes = b"") -> None:
        self.channel = channel
        self.settings = channel.settings
        self.handler = channel.handler
        self.hook = channel.on_response
        self.scheme, self.client, self.server = addresses(stream)
        self.tls = tls_info(stream)
        self.wire = Wire(stream)
        self.outbox = Outbox(self.wire, self.settings.send_timeout, self.abort, self.hook, self.client)
        self.nursery: trio.Nursery | None = None
        self.read = FIRST
        self.write = OPEN
        self.shape = QUIET
        self.pending: list[Exchange[RequestHead]] = []
        self.lone: Exchange[RequestHead] | None = None
        self.reader = Reader(self, received)
        self.writer = Writer(self)
        self._handlers_running = 0
        self._handlers_done: trio.Event | None = None

    async def run(self) -> Handoff | None:
        """Serve the connection until it ends, then close its stream: quiet, this task alone
        waits for a request's first bytes (here, not in a coroutine of its own: an idle
        connection keeps one frame less), then busy (``_work``) until it settles or ends; or,
        when a request upgraded it to WebSocket, return the :class:`Handoff` that serves the
        rest, for the caller to await once it has let go of this connection. Nothing a client
        does makes this raise; an internal error is logged and closes the connection."""
        reader = self.reader
        handoff: Handoff | None = None
        try:
            while True:
                scope = reader.quiet_scope()
                if scope is not None:
                    with scope:
                        try:
                            reader.received_quietly(await self.wire.wait_for_bytes())
                        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
                            self.abort(f"reading failed: {error!r}")
                if not reader.woken():
                    if self.write is OPEN:  # no request came, and nothing is left to write
                        self.write = advance(WRITE, self.write, FINISHED)
                    break
                if not await self._work():
                    break
            handoff = await self._end()
        except Exception:
            logger.exception("internal error while serving %s; the connection is closed", self.peer())
        finally:
            self.outbox.cut_short()
            if handoff is None:
                await trio.aclose_forcefully(self.wire.stream)
        return handoff

    async def _work(self) -> bool:
        """Serve requests in the shape for work: a nursery with the reader task, the writer in
        this task, the handlers' tasks. True when the connection settled (it is quiet again, the
        nursery closed), False when it is done."""
        self.shape = advance(SHAPE, self.shape, BUSY)
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self.outbox.deadline_scope = nursery.cancel_scope
            nursery.start_soon(self.reader.run)
            await self.writer.run()
            if self.shape is not SETTLING:
                await self._finish_handlers()
                nursery.cancel_scope.cancel()
        self.nursery = self.outbox.deadline_scope = None
        if self.shape is not SETTLING:
            return False
        self.shape = advance(SHAPE, SETTLING, QUIET)
        return True

    async def _end(self) -> Handoff | None:
        """Every task is done: end as ``state.ending`` says (a method of its own, so that the
        frame an idle connection keeps suspended in ``run`` stays small)."""
        reader = self.reader
        end = ending(self.write, self.read, reader.upgrade is not None or reader.h2c is not None)
        if end is ABORT:
            self.abort("it did not read a response within send_timeout")
        elif end is UPGRADE and reader.h2c is not None:
            await self.channel.serve_http2(self.wire.stream, reader.parser.trailing_data, reader.h2c)
        elif end is UPGRADE:
            return self._websocket_handoff()
        elif end is LINGER:
            await self.wire.linger(self.settings.linger_timeout)
        return None

    async def _finish_handlers(self) -> None:
        """The last response is written: stop the reader and, unless a request was left
        unanswered (dropQueuedRequests: everything is cancelled), let the handlers still running
        finish what they do after their response (an ASGI app's background tasks)."""
        self.reader.cancel()
        if not self.pending and self._handlers_running:
            self._handlers_done = trio.Event()
            await self._handlers_done.wait()

    def abort(self, reason: str) -> None:
        """End the connection at once: every task of it is cancelled, and every request in
        flight is told its client is gone (for code shielded from the cancellation)."""
        if self.write is ABORTED:
            return
        logger.debug("aborting the connection of %s: %s", self.peer(), reason)
        self.write = advance(WRITE, self.write, ABORTED)
        if self.nursery is not None:
            self.nursery.cancel_scope.cancel()
        self.tell_client_left()

    def tell_client_left(self) -> None:
        """The client's side ended: every request in flight learns it (a pending ASGI
        ``receive()`` gives ``http.disconnect``). Their answers are still written: a client that
        only half-closed reads them."""
        for exchange in self.pending:
            exchange.tell_client_left()

    def peer(self) -> str:
        """The client, as log messages name it."""
        return peer_name(self.client)

    # Handler tasks -------------------------------------------------------------------------------

    def start_handler(self, exchange: Exchange[RequestHead]) -> None:
        """Run the handler of ``exchange`` in a task of its own."""
        self._handlers_running += 1
        assert self.nursery is not None
        self.nursery.start_soon(self._respond, exchange)

    async def _respond(self, exchange: Exchange[RequestHead]) -> None:
        """A handler task: the response is given to the exchange, or, when it is lone, written
        by this task (unless the handler gave it early, or the body's error took its place)."""
        self.reader.handler_started()
        try:
            response = await call_handler(self.handler, exchange, self)
            if exchange.progress is AWAITED:
                if exchange.dispatch is LONE:
                    await self.writer.deliver_now(exchange, response)
                else:
                    exchange.set_response(response)
        finally:
            self._handlers_running -= 1
            if self._handlers_running == 0 and self._handlers_done is not None:
                self._handlers_done.set()

    async def respond_early(self, exchange: Exchange[RequestHead], response: Response) -> None:
        """Give ``response`` before the handler returns (what it returns is then ignored). A
        lone exchange's bytes are written by this task at once; a stream goes to the writer,
        since this task is the one producing it."""
        if exchange.dispatch is not LONE:
            exchange.set_response(response)
        elif isinstance(response.body, WHOLE):
            await self.writer.deliver_now(exchange, response)
        else:
            exchange.set_response(response)
            self.writer.hand_over(exchange)

    async def send_informational(self, exchange: Exchange[RequestHead], status: int, headers: HeaderPairs) -> None:
        """Send a 1xx response to ``exchange`` now (the writer's rules)."""
        await self.writer.send_informational(exchange, status, headers)

    # The WebSocket upgrade (the HTTP/2 one is the channel's) ---------------------------------

    def _websocket_handoff(self) -> Handoff:
        """What hands the connection to the WebSocket layer, once the reader stopped at an
        upgrade request and every response before it is written: nothing after the request's
        head was parsed as HTTP, and the bytes that arrived after it are the WebSocket's first.
        It keeps the stream, the request and those bytes, nothing else of this connection."""
        head, handler = self.reader.upgrade, self.channel.websocket_handler
        assert head is not None and handler is not None
        request = Request(
            head.method,
            head.target,
            head.http_version,
            Headers(head.headers),
            RequestBody(None),
            scheme=self.scheme,
            client=self.client,
            server=self.server,
            tls=self.tls,
        )
        serve = partial(
            serve_upgrade,
            self.wire.stream,
            request,
            self.reader.parser.trailing_data,
            self.settings,
            handler,
            open_websockets=self.channel.websockets,
            on_response=self.hook,
        )
        return Handoff(self.wire.stream, serve, self.peer())


class Handoff:
    """What serves a connection after a request upgraded it to WebSocket: awaiting it serves the
    rest and then closes the stream (an internal error is logged, as ``HTTP1Connection.run``
    logs one). ``run`` returns it rather than awaiting it so that its caller lets go of the
    HTTP/1.1 connection first: an open WebSocket, which may stay open for long, needs nothing of
    its reader, writer, parser or nursery."""

    __slots__ = ("_peer", "_serve", "_stream")

    def __init__(self, stream: trio.abc.Stream, serve: Callable[[], Awaitable[None]], peer: str) -> None:
        self._stream = stream
        self._serve = serve
        self._peer = peer

    async def __call__(self) -> None:
        try:
            await self._serve()
        except Exception:
            logger.exception("internal error while serving %s; the connection is closed", self._peer)
        finally:
            await trio.aclose_forcefully(self._stream)


async def refuse(stream: trio.abc.Stream, response: Response, linger: float) -> tuple[int, float]:
    """Answer ``response`` on a connection without reading a request from it, then close it as
    after any closing response: half-close, read and discard until the client closes, all of it
    within ``linger`` seconds (a refused client gets its answer, not a reset). The bytes
    written (all of the response's, or 0 when the client was gone or did not read in time)
    and the seconds the writing took, for its ``ResponseRecord``."""
    wire = Wire(stream)
    data = _refusal(response)
    started = trio.current_time()
    sent, seconds = 0, 0.0
    with trio.move_on_after(linger):
        try:
            await wire.write(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        else:
            sent, seconds = len(data), trio.current_time() - started
            await wire.linger(linger)
    await trio.aclose_forcefully(stream)
    return sent, seconds


def _refusal(response: Response) -> bytes:
    head = serialize_head(response, method="GET", http_version="1.1", keep_alive=False)
    assert isinstance(response.body, bytes)
    return head.data + response.body
