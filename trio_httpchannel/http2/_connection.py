"""HTTP2Connection: one HTTP/2 connection as a nursery of a reader, a writer and handler tasks.

The reader feeds the client's bytes to the guard, then to h2, and turns h2's events into
streams, each answered by a handler task of its own, at most ``h2_max_concurrent_streams`` at
once. The writer alone writes: h2's frames, and the response bodies of every stream with data,
a frame each in turn, as the client's flow-control windows allow. Every timer is a deadline
on the reader's cancel scope. See ``docs/design.md``.
"""

from __future__ import annotations

import enum
import logging
import math

import h2.events
import h2.exceptions
import trio
from h2.errors import ErrorCodes

from .._addresses import addresses
from .._config import Settings
from .._tls import tls_info
from ..websocket import OpenWebSockets, WebSocketHandler
from ._engine import goaway, new_engine
from ._exchanges import Exchanges, Handler, ResponseHook, Upgraded
from ._guard import Abuse, InboundGuard
from ._negotiation import SWITCHING_PROTOCOLS

__all__ = ["HTTP2Connection", "Handler", "ResponseHook"]

logger = logging.getLogger("trio_httpchannel")

_RECEIVE_SIZE = 65536
_OUTBOX_LIMIT = 65536
_LINGER_READ = 65536


class State(enum.Enum):
    """Where the connection is."""

    OPEN = "taking new streams"
    DRAINING = "a graceful GOAWAY is sent: the streams below it finish, new ones are refused"
    CLOSING = "the last GOAWAY is queued: the writer sends what is left, then the connection closes"
    ABORTED = "the client is gone, or did not read: close at once"


_NEXT = {
    State.OPEN: frozenset({State.DRAINING, State.CLOSING, State.ABORTED}),
    State.DRAINING: frozenset({State.CLOSING, State.ABORTED}),
    State.CLOSING: frozenset({State.ABORTED}),
    State.ABORTED: frozenset(),
}


class HTTP2Connection:
    """Serves HTTP/2 on one ``trio.abc.Stream``: :meth:`run` until the connection ends.

    ``handler``, ``settings`` and ``on_response`` mean what they mean for ``HTTPChannel``; a
    handler sees ``request.http_version == "2"``. With a ``websocket_handler`` the connection
    advertises SETTINGS_ENABLE_CONNECT_PROTOCOL and serves WebSockets over extended CONNECT
    (RFC 8441), which join ``open_websockets``. Nothing a client does makes :meth:`run`
    raise: a malformed stream is reset, a client breaking the protocol or a bound gets GOAWAY.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        handler: Handler,
        settings: Settings,
        *,
        on_response: ResponseHook | None = None,
        upgraded: Upgraded | None = None,
        websocket_handler: WebSocketHandler | None = None,
        open_websockets: OpenWebSockets | None = None,
    ) -> None:
        self._settings = settings
        self._transport = stream
        self._peer = _peer(stream)
        self._state = State.OPEN
        self._engine = new_engine(
            settings,
            upgrade_settings=upgraded.settings if upgraded else None,
            connect_protocol=websocket_handler is not None,
        )
        self._upgraded = upgraded
        self._idle_since = trio.current_time()
        self._guard = InboundGuard(settings, self._idle_since)
        self._exchanges = Exchanges(
            handler,
            settings,
            self._engine,
            self._guard,
            on_response=on_response,
            on_change=self._streams_changed,
            addresses=addresses(stream),
            tls=tls_info(stream),
            websocket_handler=websocket_handler,
            open_websockets=open_websockets,
        )
        self._sender = self._exchanges.sender
        self._read_scope: trio.CancelScope | None = None
        self._reader_scope = trio.CancelScope()
        self._written: trio.Event | None = None
        self._last_stream_id = 0
        self._nursery: trio.Nursery

    async def run(self, received: bytes = b"") -> None:
        """Serve until the connection ends, then close the stream. ``received`` are bytes
        already read from it (the preface, say) that h2 must see first."""
        try:
            if self._upgraded is not None and not await self._switch_protocols():
                return
            async with trio.open_nursery() as nursery:
                self._nursery = self._exchanges.nursery = nursery
                if self._upgraded is not None:
                    self._exchanges.open_upgraded(self._upgraded)
                nursery.start_soon(self._read, received)
                await self._write()
                if self._state is State.CLOSING:
                    await self._exchanges.finish_handlers()
                nursery.cancel_scope.cancel()
            if self._state is State.CLOSING:
                await self._linger()
        except Exception:
            logger.exception("internal error while serving HTTP/2 to %s; the connection is closed", self._peer)
        finally:
            await trio.aclose_forcefully(self._transport)

    async def _switch_protocols(self) -> bool:
        """Answer ``101`` to the ``Upgrade: h2c`` request; whether the client is still there."""
        try:
            with trio.move_on_after(self._settings.send_timeout):
                await self._transport.send_all(SWITCHING_PROTOCOLS)
                return True
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        return False

    def shutdown(self) -> None:
        """Stop taking new streams: GOAWAY names the last stream served, the streams up to it
        finish, then the connection closes (at once when idle)."""
        if self._state is not State.OPEN:
            return
        self._advance(State.DRAINING)
        self._exchanges.accepting = False
        self._last_stream_id = self._engine.highest_inbound_stream_id
        self._sender.put(goaway(self._last_stream_id))
        self._sender.kick()
        self._retime()

    def _advance(self, state: State) -> None:
        if state not in _NEXT[self._state]:
            raise RuntimeError(f"the connection cannot go from {self._state.name} to {state.name}")
        self._state = state

    def _sending(self) -> bool:
        return self._state is State.OPEN or self._state is State.DRAINING

    def _close(self, error_code: ErrorCodes, reason: str) -> None:
        """End with GOAWAY (``error_code``): the writer sends what is queued, then returns."""
        if not self._sending():
            return
        logger.debug("closing the HTTP/2 connection of %s: %s", self._peer, reason)
        last = self._last_stream_id if self._state is State.DRAINING else None
        self._exchanges.forget_all()
        self._advance(State.CLOSING)
        self._engine.close_connection(error_code, last_stream_id=last)
        self._sender.open = False
        self._reader_scope.cancel()
        self._sender.kick()

    def _abort(self, reason: str) -> None:
        if self._state is State.ABORTED:
            return
        logger.debug("aborting the HTTP/2 connection of %s: %s", self._peer, reason)
        self._advance(State.ABORTED)
        self._sender.open = False
        self._nursery.cancel_scope.cancel()

    # The reader task ---------------------------------------------------------------------------

    async def _read(self, received: bytes) -> None:
        with self._reader_scope:
            try:
                if received:
                    self._receive(received)
                while self._sending():
                    data = await self._receive_some()
                    if data is None:
                        continue
                    if not data:
                        self._abort("the client closed the connection")
                        return
                    self._receive(data)
                    await self._hold_while_backlogged()
            except Abuse as abuse:
                self._close(abuse.error_code, abuse.message)
            except h2.exceptions.ProtocolError as error:
                self._broken(error)

    def _broken(self, error: h2.exceptions.ProtocolError) -> None:
        """h2 found a connection error and queued its GOAWAY."""
        logger.debug("HTTP/2 protocol error from %s: %s", self._peer, error)
        if self._sending():
            self._exchanges.forget_all()
            self._advance(State.CLOSING)
            self._sender.open = False
        self._reader_scope.cancel()
        self._sender.kick()

    async def _receive_some(self) -> bytes | bytearray | None:
        """The next bytes (``b""`` when the client is gone), or ``None`` when a timer fired."""
        with trio.CancelScope(deadline=self._deadline()) as scope:
            self._read_scope = scope
            try:
                return await self._transport.receive_some(_RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return b""
            finally:
                self._read_scope = None
        self._timer_fired()
        return None

    def _deadline(self) -> float:
        """The nearest of the timers that apply now: the header block in progress
        (header_timeout), idleness (timeout), a stream the client's window holds (send_timeout)."""
        settings = self._settings
        deadline = math.inf
        if self._guard.block_opened is not None:
            deadline = self._guard.block_opened + settings.header_timeout
        if not self._exchanges.streams and self._state is State.OPEN:
            deadline = min(deadline, self._idle_since + settings.timeout)
        for stream in self._sender.blocked:
            if stream.blocked_since is not None:
                deadline = min(deadline, stream.blocked_since + settings.send_timeout)
        return deadline

    def _retime(self) -> None:
        """A timer's start moved: the read in progress waits until the new deadline."""
        if self._read_scope is not None:
            self._read_scope.deadline = self._deadline()

    def _timer_fired(self) -> None:
        now = trio.current_time()
        settings = self._settings
        opened = self._guard.block_opened
        if opened is not None and now >= opened + settings.header_timeout:
            self._close(ErrorCodes.ENHANCE_YOUR_CALM, "a header block did not complete within header_timeout")
            return
        if not self._exchanges.streams and self._state is State.OPEN and now >= self._idle_since + settings.timeout:
            self._close(ErrorCodes.NO_ERROR, "idle for longer than timeout")
            return
        stalled = [
            s
            for s in self._sender.blocked
            if s.blocked_since is not None and s.blocked_since + settings.send_timeout <= now
        ]
        for stream in stalled:
            logger.debug("stream %d of %s: the client's window stayed shut for send_timeout", stream.id, self._peer)
            self._exchanges.reset(stream, ErrorCodes.CANCEL)

    def _receive(self, data: bytes | bytearray) -> None:
        self._guard.feed(data, trio.current_time())
        for event in self._engine.receive_data(data):
            self._on_event(event)
        self._sender.kick()

    async def _hold_while_backlogged(self) -> None:
        """Read no more while much of what h2 answered (PING and SETTINGS acknowledgements,
        resets) waits behind a write the client is slow to take."""
        while self._sender.size > _OUTBOX_LIMIT and self._sending():
            self._written = trio.Event()
            await self._written.wait()

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            self._exchanges.on_data(event)
        elif isinstance(event, h2.events.RequestReceived):
            self._exchanges.on_request(event)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._exchanges.streams.get(event.stream_id)
            if stream is not None:
                stream.end_body()
        elif isinstance(event, h2.events.WindowUpdated):
            self._sender.window_opened(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            # The client reset the stream, or h2 did for a stream error (DATA after the
            # client's END_STREAM, say): either way h2 holds it closed, so it is over here too.
            stream = self._exchanges.streams.get(event.stream_id)
            if stream is not None:
                self._exchanges.forget(stream)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._sender.window_opened(0)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._broken(h2.exceptions.ProtocolError(f"the client sent GOAWAY ({event.error_code!r})"))

    # The writer (runs in the connection's own task) --------------------------------------------

    async def _write(self) -> None:
        """Send h2's frames and the streams' data until the connection closes."""
        sender = self._sender
        while True:
            sender.wake = trio.Event()
            if sender.fill(trio.current_time()):
                self._retime()
            sender.collect()
            if sender.chunks:
                if not await self._flush():
                    return
                continue
            if self._state is State.CLOSING or self._state is State.ABORTED:
                return
            if self._state is State.DRAINING and not self._exchanges.streams:
                self._close(ErrorCodes.NO_ERROR, "shutting down, every stream done")
                continue
            await sender.wake.wait()

    async def _flush(self) -> bool:
        """Write what is queued. The streams whose last frame it carries are done from now:
        the client may open new streams as soon as it reads those frames, which can be before
        this task runs again. A client that does not take the write within send_timeout has
        its connection aborted."""
        data, finishing = self._sender.take()
        for stream in finishing:
            self._exchanges.stream_written(stream)
        with trio.move_on_after(self._settings.send_timeout) as scope:
            try:
                await self._transport.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, OSError) as error:
                self._abort(f"writing failed: {error!r}")
                return False
        if scope.cancelled_caught:
            self._abort("the client did not read for send_timeout")
            return False
        if self._written is not None:
            self._written.set()
            self._written = None
        return True

    async def _linger(self) -> None:
        """After the last GOAWAY: half-close, then read and discard until the client closes or
        linger_timeout passes, so that unread bytes cannot make the kernel reset the GOAWAY away."""
        transport = self._transport
        with trio.move_on_after(self._settings.linger_timeout):
            try:
                if isinstance(transport, trio.abc.HalfCloseableStream):
                    await transport.send_eof()
                while await transport.receive_some(_LINGER_READ):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, OSError):
                pass

    def _streams_changed(self) -> None:
        """A stream ended: with none left, the connection is idle from now, and the read in
        progress waits until the idle deadline. With streams left no timer can fall due
        sooner, so the deadline stays (a send_timeout of a stream now gone may fire early: it
        finds nothing due and the next read is timed anew), sparing a reschedule per stream."""
        if not self._exchanges.streams:
            self._idle_since = trio.current_time()
            self._retime()


def _peer(stream: trio.abc.Stream) -> str:
    client = addresses(stream)[1]
    return str(client) if client is not None else "an unknown peer"
