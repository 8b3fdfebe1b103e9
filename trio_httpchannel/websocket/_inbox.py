"""The messages on their way to the application, and who waits for the client meanwhile.

The session's reader appends whole messages to a list of at most ``ws_max_queue``, which
:meth:`Inbox.receive` takes them from; a task waiting for one sleeps in a list of receivers the
reader wakes (what a ``ParkingLot`` does, without its ordered dict and coroutine: the handler
of every idle WebSocket sleeps here). While the application leaves ``ws_max_queue`` messages
unread, the reader waits for room (and TCP pushes back on the client).

An idle WebSocket settles: a WebSocket with work has two tasks, the handler's and the reader
(the session's); an idle one whose handler waits in ``receive()`` needs only the handler's.
Once the reader has read nothing for ``SETTLE_AFTER`` (doubled on each waking, up to
``SETTLE_AFTER_LIMIT``: the HTTP/1.1 connection's figures) while a task waits for a message,
the reader task ends and that task watches the socket instead, its deadline the reader's (the
keepalive, the pong awaited). It reads nothing: when the socket has bytes (or its end), a
deadline passes, the close begins, a write fails or the watcher is cancelled, whoever notices
starts the reader task again (:meth:`Inbox._unsettle`), which reads, answers pings, fires the
timers and hands out messages as ever; the watcher goes back to waiting for a message. So the
watcher holds no byte and no event of the protocol, and may be cancelled at any point without
losing anything.

A session settles only on a plain socket (the watcher waits on its descriptor: a TLS stream or
an HTTP/2 tunnel cannot be watched without reading it), with nothing queued for the writer, and
when it was made with the nursery the reader is started again in.

:class:`Inbox` is the base of :class:`~._session.Session`; it holds the state the two share, so
that the reader's loop reads it directly, with no object in between (as
``http1.quiet.QuietReader`` does for an HTTP/1.1 connection).
"""

from __future__ import annotations

import enum
import math
from abc import abstractmethod
from collections.abc import Iterator
from functools import partial

import trio
from outcome import Value

from ..http1.quiet import SETTLE_AFTER, SETTLE_AFTER_LIMIT
from ._errors import CloseReason, ConnectionClosed
from ._outbox import Outbox
from ._protocol import Data, ProtocolEvent, State, WebSocketProtocol
from ._reads import Reads
from ._timers import Timers

__all__ = ["Inbox", "Reading"]


class Reading(enum.Enum):
    """Who waits for the client's bytes.

    ``TASK`` --idle for the settle time, a task waiting in ``receive()``--> ``WATCHER``;
    ``WATCHER`` --bytes, a deadline, the close, a failed write, the watcher cancelled--> ``TASK``.
    """

    TASK = "task"
    """The reader task (the session's) reads."""
    WATCHER = "watcher"
    """Settled: no reader task; a task waiting in ``receive()`` watches the socket."""


class Inbox:
    """The receiving half of a session: the messages, the tasks waiting for them, the reader's
    wait for room, and the settling. The reader's read scope (``_timer``) belongs to whichever
    task waits on the socket: the reader, or the watcher."""

    __slots__ = (
        "_events",
        "_heard",
        "_local_reason",
        "_lost",
        "_max_queue",
        "_messages",
        "_outbox",
        "_protocol",
        "_read_over",
        "_reading",
        "_reads",
        "_receivers",
        "_room",
        "_sent_unscheduled",
        "_settle_after",
        "_settle_at",
        "_timer",
        "_timers",
    )

    _outbox: Outbox
    _timers: Timers

    def __init__(self, stream: trio.abc.Stream, protocol: WebSocketProtocol, max_queue: int, settles: bool) -> None:
        self._protocol = protocol
        self._reads = Reads(stream)
        self._max_queue = max_queue
        self._messages: list[Data] = []
        self._receivers: list[trio.lowlevel.Task] = []
        """The tasks waiting in :meth:`receive`, first come first served."""
        self._room: trio.Event | None = None
        self._read_over = False
        self._local_reason: CloseReason | None = None
        self._sent_unscheduled = False
        """Whether the application sent since it last waited for a message (the session's)."""
        self._events: Iterator[ProtocolEvent] | None = None
        self._timer: trio.CancelScope | None = None
        self._lost = False
        self._reading = Reading.TASK
        self._settle_after = SETTLE_AFTER if settles and self._reads.watchable else math.inf
        """How long the reader reads nothing before it settles; ``inf``: never."""
        self._settle_at = math.inf
        self._heard = False
        """Whether the reader read anything since it last tried to settle."""

    @property
    def settled(self) -> bool:
        """Whether the session has no reader task now (a task in ``receive()`` watches)."""
        return self._reading is Reading.WATCHER

    @abstractmethod
    async def _serve(self) -> None:
        """The reader task, started again by :meth:`_unsettle`."""

    async def receive(self, *, iterating: bool = False) -> Data:
        """The next message; :class:`ConnectionClosed` once the messages received before the
        close are taken (``StopAsyncIteration`` when ``iterating``: ``async for`` ends). Waiting,
        the task sleeps in a list the reader wakes it from (what a ``ParkingLot`` does, without
        its ordered dict and coroutine: the handler of every idle WebSocket sleeps here), or,
        the session settled, watches the socket for the reader."""
        await trio.lowlevel.checkpoint_if_cancelled()
        messages = self._messages
        while not messages:
            if self._read_over:
                if iterating:
                    raise StopAsyncIteration
                raise ConnectionClosed(self._reason())
            self._sent_unscheduled = False
            task = trio.lowlevel.current_task()
            self._receivers.append(task)
            if await trio.lowlevel.wait_task_rescheduled(partial(self._forget_receiver, task)):
                # Handed the wait by _settle: watch the socket for the reader, here rather than in
                # a coroutine of its own (the handler of every idle WebSocket waits here).
                scope = self._timer = trio.CancelScope(deadline=self._timers.deadline)
                try:
                    with scope:
                        await trio.lowlevel.wait_readable(self._reads.fd)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the reader finds out
                finally:
                    self._watched(scope)
        data = messages.pop(0)
        if self._room is not None:
            self._room.set()
        return data

    def _forget_receiver(self, task: trio.lowlevel.Task, _: object) -> trio.lowlevel.Abort:
        """A task waiting in :meth:`receive` was cancelled."""
        self._receivers.remove(task)
        return trio.lowlevel.Abort.SUCCEEDED

    def _reason(self) -> CloseReason:
        return self._protocol.close_reason or self._local_reason or CloseReason(1006)

    def _stop_reading(self) -> None:
        """No message comes any more: who waits for one is told the WebSocket ended."""
        self._read_over = True
        receivers, self._receivers = self._receivers, []
        for task in receivers:
            trio.lowlevel.reschedule(task)

    def _queue_full(self) -> bool:
        return len(self._messages) >= self._max_queue and self._protocol.state is State.OPEN

    async def _wait_for_room(self) -> None:
        """Wait (no timer running) until the application takes a message or closes; the pong's
        time then starts again."""
        while self._queue_full():
            self._room = trio.Event()
            await self._room.wait()
        self._room = None
        self._timers.resume(trio.current_time())

    # Settling --------------------------------------------------------------------------------------

    def _read_deadline(self) -> float:
        """The read scope's deadline: the timers', or sooner to try to settle."""
        return min(self._timers.deadline, self._settle_at)

    def _arm_settling(self) -> None:
        """The reader (re)enters its read scope: it tries to settle ``_settle_after`` from now."""
        if self._settle_after < math.inf:
            self._settle_at = trio.current_time() + self._settle_after
            self._heard = False

    def _settle(self, now: float) -> bool:
        """The read scope expired with no timer due: whether the reader task hands the wait to
        the first task waiting in ``receive()`` (and ends). It does when the settle time has
        passed with nothing read and nothing left to do but wait for the client; otherwise it
        tries again, twice as late (a busy WebSocket or a handler that does not receive pays
        for one try every ``SETTLE_AFTER_LIMIT`` at most)."""
        if now < self._settle_at:
            return False
        if self._heard or not self._may_settle():
            self._settle_after = min(2 * self._settle_after, SETTLE_AFTER_LIMIT)
            return False
        self._reading = Reading.WATCHER
        self._settle_at = math.inf
        trio.lowlevel.reschedule(self._receivers.pop(0), Value(True))
        return True

    def _may_settle(self) -> bool:
        return (
            bool(self._receivers)
            and not self._messages
            and self._events is None
            and self._room is None
            and self._protocol.state is State.OPEN
            and not self._lost
            and self._outbox.empty
        )

    def _watched(self, scope: trio.CancelScope) -> None:
        """The watcher in :meth:`receive` stopped waiting: the socket has bytes, the read
        deadline passed, it was cancelled, or :meth:`_unsettle` called the reader back. Either
        way the reader task runs again."""
        if self._timer is scope:
            self._timer = None
        self._unsettle()

    def _unsettle(self) -> None:
        """Start the reader task again (the watcher, if it still waits, stops waiting): the
        socket has bytes, a deadline passed, or the session must act (close, abort). Called
        from any task, at once: no byte is ever held by the watcher."""
        if self._reading is Reading.TASK:
            return
        self._reading = Reading.TASK
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._settle_after = min(2 * self._settle_after, SETTLE_AFTER_LIMIT)
        nursery = self._outbox.nursery
        assert nursery is not None  # a session settles only with the nursery it was made with
        nursery.start_soon(self._serve)
