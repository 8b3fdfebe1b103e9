"""One open WebSocket over a trio stream: the tasks around the sans-io protocol.

```
socket ──bytes──▶ reader ──whole messages──▶ [memory channel: ws_max_queue] ──▶ receive()
                    │ pongs owed, close frames                                   (the app)
                    ▼
socket ◀──bytes── writer ◀──(0-size channel)── send(), ping(), close(), keepalive
```

- The reader feeds the protocol and puts whole messages into a memory channel that holds at
  most ``ws_max_queue`` of them; when the application leaves them there, the reader waits and so
  stops reading, and TCP pushes back on the client. It hands the frames the protocol owes
  (pongs, close frames) to the writer.
- The writer is the only task that writes. It encodes each frame when it writes it (so frames
  are compressed in the order the client reads them), at once when the socket takes it (through
  ``Wire``, as the HTTP outbox writes: no scheduler pass), else waiting at most ``send_timeout``.
  A frame is handed over through a zero-size channel: handing it over is all or nothing, so a
  cancelled sender never leaves half a frame.
- The keepalive pings every ``ws_ping_interval`` and closes with 1011 when no pong comes within
  ``ws_ping_timeout``. That timer is a cancel scope whose deadline is lifted while the reader waits
  for the application (the pong may be sitting unread behind the messages).
- The close handshake, from whichever side starts it, has ``ws_close_timeout``: our close frame
  out, the client's close frame in, then the client's end of the TCP connection (after our
  ``send_eof``, so that unread bytes cannot make the kernel reset our close frame away). Then the
  connection is closed, whatever is left.
- While it runs, the session is in its channel's :class:`OpenWebSockets`, whose graceful shutdown
  starts the close handshake with 1001 (:meth:`Session.going_away`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from functools import partial

import trio
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, TextMessage

from .._config import Settings
from ..http1.wire import Wire
from ._errors import CloseReason, ConnectionClosed
from ._going_away import GOING_AWAY, OpenWebSockets
from ._protocol import (
    Closed,
    Data,
    Message,
    PongReceived,
    ProtocolEvent,
    Reply,
    State,
    WebSocketProtocol,
)

__all__ = ["Session", "check_close_code"]

logger = logging.getLogger("trio_httpchannel.websocket")

_RECEIVE_SIZE = 65536


def check_close_code(code: int) -> None:
    """Raise ``ValueError`` unless ``code`` may be sent in a close frame (RFC 6455 section 7.4)."""
    if isinstance(code, bool) or not isinstance(code, int) or not (code in _SENDABLE or 3000 <= code <= 4999):
        raise ValueError(f"{code!r} is not a close code an endpoint may send (1000-1003, 1007-1014, 3000-4999)")


_SENDABLE = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


class Session:
    """One WebSocket after its ``101``: :meth:`run` serves it until the close handshake is over
    and then closes the stream; the application meanwhile calls :meth:`receive`, :meth:`send`,
    :meth:`ping` and :meth:`close`, from any task. While it runs it is in ``open_websockets``
    (its channel's), which closes it with 1001 when the server shuts down."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: WebSocketProtocol,
        settings: Settings,
        open_websockets: OpenWebSockets | None = None,
    ) -> None:
        self._stream = stream
        self._wire = Wire(stream)
        self._protocol = protocol
        self._settings = settings
        self._open_websockets = open_websockets
        self.sent = 0
        """Bytes of frames written to the client so far."""
        self._messages_send, self._messages_receive = trio.open_memory_channel[Data](settings.ws_max_queue - 1)
        self._outbox_send, self._outbox_receive = trio.open_memory_channel[Event](0)
        self._pings: dict[bytes, trio.Event] = {}
        self._pong_scope: trio.CancelScope | None = None
        self._queue_scope: trio.CancelScope | None = None
        self._paused = False
        self._local_reason: CloseReason | None = None
        self._lost = False
        self._closing = trio.Event()
        self._close_deadline = math.inf
        self._read_over = trio.Event()
        self._close_written = trio.Event()
        self._finished = trio.Event()
        self._nursery: trio.Nursery | None = None

    @property
    def close_reason(self) -> CloseReason | None:
        """Why the WebSocket ended (see :attr:`WebSocketProtocol.close_reason`), once it has."""
        return self._protocol.close_reason

    @property
    def close_written(self) -> bool:
        """Whether our close frame was written: the WebSocket ended without being cut short."""
        return self._close_written.is_set()

    # What the application calls ------------------------------------------------------------------

    async def receive(self) -> Data:
        """The next message; :class:`ConnectionClosed` once the messages received before the
        close are taken."""
        try:
            return await self._messages_receive.receive()
        except trio.EndOfChannel:
            raise ConnectionClosed(self._reason()) from None

    async def send(self, data: Data) -> None:
        """Hand a message to the writer; it returns when the writer has taken it (so at most one
        message waits while the previous one is written)."""
        if isinstance(data, str):
            await self._hand_over(TextMessage(data))
        elif isinstance(data, (bytes, bytearray, memoryview)):
            await self._hand_over(BytesMessage(bytes(data)))
        else:
            raise TypeError(f"a WebSocket message is str or bytes, not {type(data).__name__}")

    async def ping(self, payload: bytes | None = None) -> None:
        """Send a ping (``payload`` defaults to 8 random bytes) and wait for its pong, or a later
        ping's; :class:`ConnectionClosed` if the WebSocket ends first."""
        payload = os.urandom(8) if payload is None else bytes(payload)
        pong = await self._send_ping(payload)
        await pong.wait()
        if self._pings.get(payload) is pong:
            del self._pings[payload]
            raise ConnectionClosed(self._reason())

    async def _send_ping(self, payload: bytes) -> trio.Event:
        """Hand a ping to the writer; the event is set when its pong arrives or the WebSocket
        ends (then the ping is still in ``_pings``)."""
        if len(payload) > 125:
            raise ValueError(f"a ping's payload is at most 125 bytes, not {len(payload)}")
        if payload in self._pings:
            raise ValueError(f"a ping with the payload {payload!r} is already waiting for its pong")
        pong = self._pings[payload] = trio.Event()
        try:
            await self._hand_over(Ping(payload))
        except BaseException:
            del self._pings[payload]
            raise
        return pong

    async def close(self, code: int = 1000, reason: str = "", *, wait: bool = True) -> None:
        """Start the close handshake with ``code`` and ``reason`` (unless it is under way) and,
        with ``wait``, return once the connection is closed. The close frame is handed over
        shielded from cancellation, so a cancelled closer still closes cleanly."""
        check_close_code(code)
        event = self._protocol.start_close(code, reason)
        if event is not None:
            self._local_reason = CloseReason(code, reason)
            self._begin_closing()
            if self._queue_scope is not None:
                self._queue_scope.cancel()
            with trio.CancelScope(shield=True):
                try:
                    await self._outbox_send.send(event)
                except trio.BrokenResourceError:
                    pass
        if wait:
            await self._finished.wait()

    def going_away(self) -> None:
        """The server is shutting down: start the close handshake with 1001, in a task of the
        session's own (unless it is under way already)."""
        if self._nursery is not None and self._protocol.state is State.OPEN:
            self._nursery.start_soon(partial(self.close, GOING_AWAY, "server shutting down", wait=False))

    async def _hand_over(self, event: Event) -> None:
        if self._protocol.state is not State.OPEN:
            raise ConnectionClosed(self._reason())
        try:
            await self._outbox_send.send(event)
        except trio.BrokenResourceError:
            raise ConnectionClosed(self._reason()) from None

    def _reason(self) -> CloseReason:
        return self._protocol.close_reason or self._local_reason or CloseReason(1006)

    # The tasks -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the WebSocket until the close handshake is over (or its timeout passes), then
        close the stream."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self._open_websockets is not None:
                    self._open_websockets.add(self)
                nursery.start_soon(self._read)
                nursery.start_soon(self._write)
                if self._settings.ws_ping_interval is not None:
                    nursery.start_soon(self._keepalive, self._settings.ws_ping_interval)
                await self._closing.wait()
                with trio.move_on_at(self._close_deadline):
                    await self._read_over.wait()
                    if not self._lost:
                        await self._close_written.wait()
                        await self._linger()
                nursery.cancel_scope.cancel()
        finally:
            if self._open_websockets is not None:
                self._open_websockets.discard(self)
            self._protocol.connection_lost()
            self._finished.set()
            for pong in self._pings.values():
                pong.set()
            await trio.aclose_forcefully(self._stream)

    def _begin_closing(self) -> None:
        if not self._closing.is_set():
            self._close_deadline = trio.current_time() + self._settings.ws_close_timeout
            self._closing.set()

    def _abort(self, why: str) -> None:
        """The connection cannot go on (a write failed or timed out): end everything now."""
        logger.debug("aborting a WebSocket: %s", why)
        self._lost = True
        self._protocol.connection_lost()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _read(self) -> None:
        protocol = self._protocol
        try:
            await self._handle(protocol.events())
            while protocol.reading and await self._read_once():
                pass
        finally:
            protocol.connection_lost()
            self._messages_send.close()
            self._read_over.set()

    async def _read_once(self) -> bool:
        """Read once and act on what it means; False at the end of the connection. (Its own
        frame, so that an idle WebSocket holds none of the bytes it last read.)"""
        try:
            data = await self._stream.receive_some(_RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self._lost = True
            self._protocol.connection_lost()
            self._begin_closing()
            return False
        self._protocol.receive_data(bytes(data))
        await self._handle(self._protocol.events())
        return True

    async def _handle(self, events: Iterable[ProtocolEvent]) -> None:
        for event in events:
            if isinstance(event, Message):
                await self._queue(event.data)
            elif isinstance(event, Reply):
                if isinstance(event.event, CloseConnection):
                    self._begin_closing()
                try:
                    await self._outbox_send.send(event.event)
                except trio.BrokenResourceError:
                    pass
            elif isinstance(event, PongReceived):
                self._pong(event.payload)
            elif isinstance(event, Closed):
                self._begin_closing()

    async def _queue(self, data: Data) -> None:
        """Queue a message for the application, waiting (so not reading) while the queue is full.
        The channel holds ``ws_max_queue - 1`` and this task the last one. When the application
        closes meanwhile, the message is dropped and reading goes on: the client's close frame
        is behind it."""
        try:
            self._messages_send.send_nowait(data)
            return
        except trio.WouldBlock:
            pass
        self._pause_pong_timer(True)
        try:
            with trio.CancelScope() as self._queue_scope:
                await self._messages_send.send(data)
        finally:
            self._queue_scope = None
            self._pause_pong_timer(False)

    def _pause_pong_timer(self, paused: bool) -> None:
        self._paused = paused
        scope = self._pong_scope
        if scope is not None:
            scope.deadline = self._pong_deadline()

    def _pong_deadline(self) -> float:
        timeout = self._settings.ws_ping_timeout
        if self._paused or timeout is None:
            return math.inf
        return trio.current_time() + timeout

    def _pong(self, payload: bytes) -> None:
        """A pong answers its ping and every earlier one (RFC 6455 section 5.5.3 lets a peer
        answer only the latest); one that answers none is ignored."""
        if payload not in self._pings:
            return
        for key in list(self._pings):
            self._pings.pop(key).set()
            if key == payload:
                return

    async def _write(self) -> None:
        """Write every frame handed over, in order, until our close frame is out."""
        with self._outbox_receive:
            while await self._write_next():
                pass

    async def _write_next(self) -> bool:
        """Write the next frame handed over; False once our close frame is out. (Its own frame,
        so that an idle WebSocket holds nothing of the message it last sent.)"""
        try:
            event = await self._outbox_receive.receive()
        except trio.EndOfChannel:
            return False
        data = self._protocol.encode(event)
        if data is None:
            return True
        await self._send_all(data)
        if isinstance(event, CloseConnection):
            self._close_written.set()
            return False
        return True

    async def _send_all(self, data: bytes) -> None:
        """Write ``data``: at once when the socket takes it (no scheduler pass, the common case),
        else waiting up to ``send_timeout`` for the client to read."""
        try:
            written = self._wire.write_at_once(data)
            if written < len(data):
                with trio.move_on_after(self._settings.send_timeout) as waiting:
                    await self._wire.write_rest(data, written)
                if waiting.cancelled_caught:
                    self._abort("the client did not read within send_timeout")
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            self._abort(f"writing failed: {error!r}")
            return
        self.sent += len(data)

    async def _linger(self) -> None:
        """Half-close and read until the client closes its end: closing with unread bytes would
        make the kernel reset the connection, which can destroy our close frame in flight."""
        stream = self._stream
        try:
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
                while await stream.receive_some(_RECEIVE_SIZE):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _keepalive(self, interval: float) -> None:
        """Ping every ``interval`` seconds; close with 1011 when a pong is overdue."""
        while True:
            await trio.sleep(interval)
            try:
                if self._settings.ws_ping_timeout is None:
                    await self._hand_over(Ping(os.urandom(8)))
                    continue
                pong = await self._send_ping(os.urandom(8))
            except ConnectionClosed:
                return
            with trio.CancelScope(deadline=self._pong_deadline()) as scope:
                self._pong_scope = scope
                await pong.wait()
            self._pong_scope = None
            if scope.cancelled_caught:
                logger.debug("a WebSocket client did not answer a ping within ws_ping_timeout")
                await self.close(1011, "keepalive ping timeout", wait=False)
                return
