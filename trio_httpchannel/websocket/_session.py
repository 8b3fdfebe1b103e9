"""One open WebSocket over a trio stream: the session's task around the sans-io protocol.

```
socket ──bytes──▶ run(): the reader ──whole messages──▶ [list: ws_max_queue] ──▶ receive()
                    │ pongs, close frames, keepalive pings                      (the handler)
                    ▼                                                                │
socket ◀──bytes── Outbox: written at once by the task that makes the frame ◀── send(), ping(), close()
                    │ what the socket does not take: queued, in order
                    ▼
                  writer task (only while frames are queued)
```

- The session's task (:meth:`Session.run`) is the reader: it feeds the protocol and appends
  whole messages to a list of at most ``ws_max_queue`` (the :class:`Inbox`, its base, which
  :meth:`~Inbox.receive` takes them from); when the application leaves them there
  it stops reading (TCP pushes back), and it does not read on while a frame it owes (a pong, a
  close frame) waits behind a client that does not read.
- Frames go through the :class:`Outbox`: written at once by the task that makes them when the
  socket takes them, else queued for a writer task (in the nursery the session was made with)
  that runs only while frames wait. A sender waits while a frame is queued before it encodes its
  own (cancelling that wait sends nothing). An echo is two scheduler passes: the reader woken by
  the socket, the handler woken by the reader.
- An idle WebSocket settles (``_inbox.py``): once the reader has read nothing for a while and
  a task waits in :meth:`Session.receive`, the reader task ends and that task watches the
  socket, until bytes, a deadline or the close start the reader again.
- The keepalive and the close handshake's ``ws_close_timeout`` are the reader's read deadline
  (:class:`Timers`), not tasks. The close handshake: our close frame out, the client's in, then
  the client's end of the TCP connection (after our ``send_eof``), then the stream is closed.
- While it runs, the session is in its channel's :class:`OpenWebSockets`, whose graceful shutdown
  starts the close handshake with 1001 (:meth:`Session.going_away`).
"""

from __future__ import annotations

import logging
import os

import trio
from wsproto.events import CloseConnection, Event, Ping

from .._config import Settings
from ._errors import CloseReason, ConnectionClosed
from ._going_away import GOING_AWAY, OpenWebSockets
from ._inbox import Inbox
from ._outbox import Outbox
from ._protocol import (
    Closed,
    Data,
    Message,
    PongReceived,
    Reply,
    State,
    WebSocketProtocol,
    check_close_code,
)
from ._timers import Due, Timers

__all__ = ["Session"]

logger = logging.getLogger("trio_httpchannel.websocket")


class Session(Inbox):
    """One WebSocket after its ``101``: :meth:`run` serves it until the close handshake is over
    and then closes the stream; the application meanwhile calls :meth:`receive`, :meth:`send`,
    :meth:`ping` and :meth:`close`, from any task. While it runs it is in ``open_websockets``
    (its channel's), which closes it with 1001 when the server shuts down.

    Slotted, and most of what it waits with made only when something waits: an idle WebSocket
    costs memory for as long as it stays open."""

    __slots__ = (
        "_close_encoded",
        "_done",
        "_open_websockets",
        "_settings",
        "_stream",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: WebSocketProtocol,
        settings: Settings,
        open_websockets: OpenWebSockets | None = None,
        nursery: trio.Nursery | None = None,
    ) -> None:
        super().__init__(stream, protocol, settings.ws_max_queue, settles=nursery is not None)
        self._stream = stream
        self._settings = settings
        self._open_websockets = open_websockets
        self._outbox = Outbox(stream, settings.send_timeout, self._abort)
        self._outbox.nursery = nursery
        self._timers = Timers(settings)
        self._close_encoded = False
        self._done: trio.Event | None = None

    @property
    def sent(self) -> int:
        """Bytes of frames written to the client so far."""
        return self._outbox.sent

    @property
    def close_reason(self) -> CloseReason | None:
        """Why the WebSocket ended (see :attr:`WebSocketProtocol.close_reason`), once it has."""
        return self._protocol.close_reason

    @property
    def close_written(self) -> bool:
        """Whether our close frame was written: the WebSocket ended without being cut short."""
        return self._close_encoded and self._outbox.empty

    # What the application calls ------------------------------------------------------------------

    async def send(self, data: Data) -> None:
        """Send a message: written at once when the socket takes it, else queued once no other
        frame is (so at most one message waits while the client reads slowly; see
        :meth:`_wait_to_send`). A send right after the application waited for a message costs no
        scheduler pass (it was just scheduled); any further one makes one, so that a task sending
        in a loop, which a fast client never makes wait, cannot hold the scheduler. (The frame is
        encoded from the data, with no wsproto event: making that frozen dataclass cost 2 % of a
        1 KiB echo.)"""
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        elif not isinstance(data, (str, bytes)):
            raise TypeError(f"a WebSocket message is str or bytes, not {type(data).__name__}")
        await self._wait_to_send()
        frame = self._protocol.encode_message(data)
        if frame is not None:
            self._outbox.write(frame)
        if self._sent_unscheduled:
            await trio.lowlevel.cancel_shielded_checkpoint()
        self._sent_unscheduled = True

    async def ping(self, payload: bytes | None = None) -> None:
        """Send a ping (``payload`` defaults to 8 random bytes) and wait for its pong, or a later
        ping's; :class:`ConnectionClosed` if the WebSocket ends first."""
        payload = os.urandom(8) if payload is None else bytes(payload)
        if len(payload) > 125:
            raise ValueError(f"a ping's payload is at most 125 bytes, not {len(payload)}")
        pings = self._timers.pings
        if payload in pings:
            raise ValueError(f"a ping with the payload {payload!r} is already waiting for its pong")
        await self._wait_to_send()
        if payload in pings:
            raise ValueError(f"a ping with the payload {payload!r} is already waiting for its pong")
        pong = pings[payload] = trio.Event()
        self._write_frame(Ping(payload))
        await pong.wait()
        if pings.get(payload) is pong:
            del pings[payload]
            raise ConnectionClosed(self._reason())

    async def close(self, code: int = 1000, reason: str = "", *, wait: bool = True) -> None:
        """Start the close handshake with ``code`` and ``reason`` (unless it is under way) and,
        with ``wait``, return once the connection is closed. The close frame is queued before
        anything can be cancelled, so a cancelled closer still closes cleanly."""
        check_close_code(code)
        self._start_close(code, reason)
        if wait:
            if self._done is None:
                self._done = trio.Event()
            await self._done.wait()
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()

    def going_away(self) -> None:
        """The server is shutting down: start the close handshake with 1001 (unless it is under
        way already)."""
        self._start_close(GOING_AWAY, "server shutting down")

    async def _wait_to_send(self) -> None:
        """Return once the WebSocket is open and no frame waits for the writer; cancelling the
        wait sends nothing. :class:`ConnectionClosed` once the close handshake has begun."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            if self._protocol.state is not State.OPEN:
                raise ConnectionClosed(self._reason())
            if not self._outbox.waiting:
                return
            await self._outbox.wait_for_room()

    def _start_close(self, code: int, reason: str) -> None:
        event = self._protocol.start_close(code, reason)
        if event is None:
            return
        self._local_reason = CloseReason(code, reason)
        self._write_frame(event)
        self._begin_closing()
        if self._room is not None:
            self._room.set()
        self._unsettle()

    # The session's task: the reader --------------------------------------------------------------

    async def run(self) -> None:
        """Serve the WebSocket until the close handshake is over (or its timeout passes), then
        close the stream. The writer task, while frames wait for it, runs in the ``nursery``
        the session was made with, or else in one of this call's own (which an idle WebSocket
        then holds: 1.3 KB, and it never settles). With the session's nursery, this task may
        end early, the session settled (``_inbox.py``): the reader task then starts again in
        that nursery when there is work, and the last one closes the stream."""
        self._outbox.start_writer()
        if self._open_websockets is not None:
            self._open_websockets.add(self)
        self._timers.start(trio.current_time())
        self._events = self._protocol.events()
        if self._outbox.nursery is not None:
            await self._serve()
            return
        async with trio.open_nursery() as nursery:
            self._outbox.nursery = nursery
            await self._serve()

    async def _serve(self) -> None:
        """The reader task: read until the session settles or the close handshake is over."""
        settled = False
        try:
            settled = await self._read()
            if not settled and not self._lost:
                with trio.move_on_at(self._timers.close_due):
                    await self._outbox.wait_written()
                if self._close_encoded and self._outbox.empty and trio.current_time() < self._timers.close_due:
                    await self._outbox.linger(self._timers.close_due)
        finally:
            if not settled:
                self._end()
                await trio.aclose_forcefully(self._stream)

    def _end(self) -> None:
        if self._open_websockets is not None:
            self._open_websockets.discard(self)
        self._protocol.connection_lost()
        self._outbox.close()
        self._stop_reading()
        self._timers.end()
        if self._done is None:
            self._done = trio.Event()
        self._done.set()

    async def _read(self) -> bool:
        """Read until the client's close frame, the end of the connection, a broken rule or the
        end of the close handshake's time (then ``False``), or until the session settles
        (``True``: a task in :meth:`receive` watches the socket now). The only wait inside the
        timer's cancel scope is the read itself; waiting for the application or the writer
        happens outside it."""
        reads = self._reads
        settled = False
        try:
            while True:
                await self._catch_up()
                if not self._protocol.reading or self._lost:
                    return False
                self._arm_settling()
                with trio.CancelScope(deadline=self._read_deadline()) as self._timer:
                    while self._received(await reads.receive_some()):
                        pass
                self._timer = None
                now = trio.current_time()
                due = self._timers.due(now)
                if due is Due.CLOSE_OVER:
                    return False
                if due is Due.NOTHING and self._settle(now):
                    settled = True
                    return True
                if self._protocol.reading:
                    self._tick(due)
        finally:
            self._timer = None
            if not settled:
                self._protocol.connection_lost()
                self._stop_reading()

    def _received(self, data: bytes) -> bool:
        """Act on ``data`` (``b""``: the connection ended); whether to read on. (The bytes are an
        argument, not a variable of the read loop, so an idle WebSocket does not hold the last.)"""
        protocol = self._protocol
        self._heard = True
        if not data:
            self._lost = True
            protocol.connection_lost()
            self._begin_closing()
            return False
        protocol.receive_data(data)
        self._events = protocol.events()
        return self._dispatch()

    async def _catch_up(self) -> None:
        """Act on the events not yet acted on, waiting while the application leaves
        ``ws_max_queue`` messages unread or a frame waits for the writer (once reading is over,
        the close handshake's time bounds that wait: :meth:`run`'s)."""
        while self._protocol.reading and not self._lost:
            if self._queue_full():
                await self._wait_for_room()
            elif self._outbox.waiting:
                await self._outbox.wait_for_room()
            elif self._events is not None:
                self._dispatch()
            else:
                return

    def _dispatch(self) -> bool:
        """Act on the pending events until one makes the reader wait; whether it may read on.
        (The events come one at a time from the protocol, which drops a message that arrives
        after our close frame: so the application's close still drops what the reader had
        parsed but not yet queued.)"""
        assert self._events is not None
        for event in self._events:
            if isinstance(event, Message):
                self._messages.append(event.data)
                if self._receivers:
                    trio.lowlevel.reschedule(self._receivers.pop(0))
            elif isinstance(event, Reply):
                if isinstance(event.event, CloseConnection):
                    self._begin_closing()
                self._write_frame(event.event)
            elif isinstance(event, PongReceived):
                if self._timers.pong(event.payload, trio.current_time()):
                    self._move_deadline()
            elif isinstance(event, Closed):
                self._begin_closing()
            if self._queue_full() or self._outbox.waiting:
                return False
        self._events = None
        return self._protocol.reading

    def _write_frame(self, event: Event) -> None:
        data = self._protocol.encode(event)
        if data is None:
            return
        if isinstance(event, CloseConnection):
            self._close_encoded = True
        self._outbox.write(data)

    # Timers (``_timers.py``) -------------------------------------------------------------------

    def _move_deadline(self) -> None:
        if self._timer is not None:
            self._timer.deadline = self._read_deadline()

    def _tick(self, due: Due) -> None:
        """Close with 1011 when the pong is overdue, send the keepalive ping when it is due."""
        if due is Due.PONG_OVERDUE:
            logger.debug("a WebSocket client did not answer a ping within ws_ping_timeout")
            self._start_close(1011, "keepalive ping timeout")
        elif due is Due.PING and not self._outbox.empty:
            # Frames are still on their way to a client slow to read them: a ping now would only
            # queue behind them and keep the reader waiting for the writer instead of reading.
            self._timers.ping_postponed(trio.current_time())
        elif due is Due.PING:
            payload = os.urandom(8) if self._protocol.state is State.OPEN else None
            self._timers.keepalive_sent(payload, trio.current_time())
            if payload is not None:
                self._write_frame(Ping(payload))

    def _begin_closing(self) -> None:
        if self._timers.begin_closing(trio.current_time()):
            self._move_deadline()

    # The end ---------------------------------------------------------------------------------------

    def _abort(self, why: str) -> None:
        """The connection cannot go on (a write failed or timed out): end everything now."""
        logger.debug("aborting a WebSocket: %s", why)
        self._lost = True
        self._protocol.connection_lost()
        if self._timer is not None:
            self._timer.cancel()
        if self._room is not None:
            self._room.set()
        self._unsettle()
