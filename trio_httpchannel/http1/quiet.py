"""The reader's part in keeping a connection small while nothing happens [new: no web2 peer].

A connection with work is a nursery of tasks; a quiet one (``Shape.QUIET``: no request yet, or
idle between requests) is its own task alone, waiting for bytes. This module promises how the
two shapes meet, and nothing else:

- the idle timer: while idle between requests the read scope expires at the idle timeout,
  counted from the last response whatever the shape, or sooner to settle;
- when a busy connection settles: idle for ``SETTLE_AFTER`` (doubled on each waking, up to
  ``SETTLE_AFTER_LIMIT``) with nothing in flight and no task in its nursery but the reader;
- the quiet wait: the connection's own task waits in a read scope of its own, under the same
  deadline, and wakes the reader only when a request's bytes (or the client's end) are there.

:class:`QuietReader` is the base of :class:`~.reader.Reader`, which reads requests; it holds the
state the two share (the parser and the read scope), so that the per-request path reads it
directly, with no object in between.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from .._state import advance
from .parser import RequestParser
from .state import DONE, IDLE, OPEN, READ

if TYPE_CHECKING:
    from .connection import HTTP1Connection

__all__ = ["QuietReader", "SETTLE_AFTER", "SETTLE_AFTER_LIMIT"]

SETTLE_AFTER = 0.01
"""Seconds a keep-alive connection waits for its next request with its tasks (reader, writer,
nursery) before it settles to one task: longer than a client sending one request after another
leaves between them (well under a millisecond on loopback or a LAN; 2.5 ms for each of fifty
connections served 20,000 requests a second), so that such a client never pays for tasks made and ended; and short, because
every connection holds its tasks for this long after each burst of work, and the allocator keeps
that memory once freed: connections opened in a burst (50 at a time, thousands a second) leave
the server the memory of all that were busy at once, whatever their number (at 1,000 idle
connections 5.3-5.5 KiB of RSS a connection with 0.01 s, 5.8-6.2 with 0.05, 8.2 with 0.2).
A client whose requests come further apart makes it grow (``SETTLE_AFTER_LIMIT``)."""

SETTLE_AFTER_LIMIT = 1.6
"""A connection woken from its settled shape waits twice as long as before to settle again, up
to this: a client whose requests come a network round trip apart (longer than SETTLE_AFTER)
soon stops paying for the change of shape each time (about 460k instructions, more than a
request), and a connection left idle still settles within two seconds."""


SETTLE_SLACK = 0.125
"""How much sooner than ``SETTLE_AFTER`` (as a fraction of it) an idle connection may settle,
its read deadline left from an earlier response rather than moved at each one."""


class QuietReader:
    """The read timer between requests, the settling, and the quiet wait of one connection.

    Its timer is the read scope (``_scope``), a new one for each task that reads: the
    connection's own while it is quiet, the reader task's while it is busy. While idle between
    requests it expires at the idle timeout (``_idle_deadline``), or sooner to settle."""

    __slots__ = ("_connection", "_settings", "_wire", "parser", "_scope", "_idle_deadline", "_settle_after")

    def __init__(self, connection: HTTP1Connection, received: bytes) -> None:
        self._connection = connection
        self._settings = connection.settings
        self._wire = connection.wire
        self.parser = RequestParser(self._settings)
        if received:
            self.parser.receive_data(received)
        self._scope = trio.CancelScope()
        self._idle_deadline: float | None = None
        """When the idle wait for the next request times out; ``None`` until it has begun."""
        self._settle_after = SETTLE_AFTER

    def arm_idle_timer(self) -> None:
        """The last response in flight is delivered: an idle wait for the next request now
        lasts ``timeout``."""
        if self._connection.read is IDLE:
            self._idle_deadline = None
            self._time_idle_wait()

    def _time_idle_wait(self) -> None:
        """Set the read scope's deadline for an idle wait (``_idle_timer``). It is moved only
        when it is later than that or sooner by more than ``SETTLE_SLACK`` of the wait to
        settle: a client sending one request after another would otherwise pay a move (trio's
        costliest call on the path) for each, where now it pays one every few milliseconds.
        Expiring that little early, the scope settles the connection that much sooner, or the
        reader reads on (``_expired_early``)."""
        target = self._idle_timer()
        scope = self._scope
        if not target - self._settle_after * SETTLE_SLACK <= scope.deadline <= target:
            scope.deadline = target

    def _idle_timer(self) -> float:
        """The read scope's deadline while idle between requests: the idle timeout (counted from
        now if the idle wait begins now), or the time to settle from now, whichever is sooner."""
        now = trio.current_time()
        if self._idle_deadline is None:
            self._idle_deadline = now + self._settings.timeout
        return min(self._idle_deadline, now + self._settle_after)

    def _first_wait(self) -> float:
        """How long to wait for the first request: ``timeout``, or ``header_timeout`` when the
        channel shuts down (the client connected to send one)."""
        settings = self._settings
        return settings.header_timeout if self._connection.channel.shutting_down else settings.timeout

    # The connection's own task, while it is quiet ------------------------------------------

    def quiet_scope(self) -> trio.CancelScope | None:
        """The read scope in which the connection's own task waits, alone (no reader task, no
        nursery), for the first bytes of a request while ``read`` is ``FIRST`` or ``IDLE``:
        ``timeout`` (``header_timeout`` for a first request in a shutdown), counted on across
        the settling. ``None`` when it must not wait: bytes are there already, or the channel
        shuts down while it is idle between requests (it closes)."""
        connection = self._connection
        if self.parser.has_buffered_data or self.parser.closed:
            return None
        if connection.read is not IDLE:
            self._scope = trio.CancelScope(deadline=trio.current_time() + self._first_wait())
        elif connection.channel.shutting_down:
            return None
        else:
            assert self._idle_deadline is not None
            self._scope = trio.CancelScope(deadline=self._idle_deadline)
        return self._scope

    def received_quietly(self, data: bytes | bytearray | None) -> None:
        """What the quiet wait found: the bytes read (``None``: a socket became readable)."""
        if data is None:
            data = self._wire.receive_ready()
        if data is not None:
            self._received(data)

    def woken(self) -> bool:
        """After the quiet wait: whether a request's bytes (or the client's end) are there for a
        reader task to parse. If not (the timer expired, the channel shuts down, the client is
        gone), no request will be read: ``read`` is ``DONE``."""
        parser = self.parser
        if (parser.has_buffered_data or parser.closed) and self._connection.write is OPEN:
            self._scope = trio.CancelScope()
            if self._connection.read is IDLE:
                self._settle_after = min(2 * self._settle_after, SETTLE_AFTER_LIMIT)
            return True
        self._connection.read = advance(READ, self._connection.read, DONE)
        return False

    def _received(self, data: bytes | bytearray) -> None:
        self.parser.receive_data(data)
        if not data:
            self._connection.tell_client_left()

    # The reader task, when its read scope expires ----------------------------------------------

    def _expired_early(self) -> bool:
        """Whether the read scope expired before the timer that counts: to settle, or at a
        deadline left from the read of a request now in flight (which has no read timer: see
        ``Reader._receive``); the reader then reads on in a new scope. Not when a timer ran out
        or a shutdown cancelled an idle read. It is always in ``Reader._next_head``'s wait
        (``IDLE``)."""
        connection = self._connection
        if connection.read is not IDLE or connection.channel.shutting_down:
            return False
        deadline = self._idle_deadline
        return bool(connection.pending) or deadline is None or trio.current_time() < deadline

    def _may_settle(self) -> bool:
        """Whether the connection can do without its nursery: nothing in flight and no task in
        it but the reader's (no handler finishing what it does after its response, no task a
        handler started in ``Request.nursery``), and the idle timeout known, which the quiet
        wait goes on counting. Otherwise the reader waits on and tries again."""
        connection = self._connection
        nursery = connection.nursery
        return (
            not connection.pending
            and self._idle_deadline is not None
            and nursery is not None
            and len(nursery.child_tasks) == 1
        )
