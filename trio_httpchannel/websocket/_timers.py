"""The deadlines of one WebSocket's reader: the keepalive, its pong, the close handshake.

The session's reader waits for bytes in a cancel scope whose deadline is :attr:`Timers.deadline`,
the earliest of the next keepalive ping (every ``ws_ping_interval``), the pong it waits for
(``ws_ping_timeout``, then close 1011) and the end of the close handshake (``ws_close_timeout``).
Each moves only when its own event happens (a ping sent, its pong received, the close begun),
never per message, so a busy WebSocket moves no deadline. No I/O here: the times come in, what
is due goes out, and the session acts on it.
"""

from __future__ import annotations

import enum
import math

import trio

from .._config import Settings

__all__ = ["Due", "Timers"]


class Due(enum.Enum):
    """What a passed deadline means, the most pressing first."""

    CLOSE_OVER = "close over"
    """The close handshake's time is up: the connection is closed, whatever is left."""
    PONG_OVERDUE = "pong overdue"
    """The keepalive ping went unanswered: close with 1011."""
    PING = "ping"
    """The keepalive ping is due."""
    NOTHING = "nothing"


class Timers:
    """The reader's deadlines, and the pings awaiting their pong (oldest first: the app's with
    the event its ``ping`` waits on, the keepalive's with ``None``)."""

    __slots__ = ("_close_timeout", "_interval", "_timeout", "close_due", "next_ping", "pings", "pong_due")

    def __init__(self, settings: Settings) -> None:
        self._interval = settings.ws_ping_interval
        self._timeout = settings.ws_ping_timeout
        self._close_timeout = settings.ws_close_timeout
        self.pings: dict[bytes, trio.Event | None] = {}
        self.next_ping = math.inf
        self.pong_due = math.inf
        self.close_due = math.inf

    @property
    def deadline(self) -> float:
        return min(self.next_ping, self.pong_due, self.close_due)

    def start(self, now: float) -> None:
        """The WebSocket is open: the first keepalive ping is due an interval from now."""
        if self._interval is not None:
            self.next_ping = now + self._interval

    def due(self, now: float) -> Due:
        """What is due at ``now`` (a pong overdue is reported once)."""
        if now >= self.close_due:
            return Due.CLOSE_OVER
        if now >= self.pong_due:
            self.pong_due = math.inf
            return Due.PONG_OVERDUE
        if now >= self.next_ping:
            return Due.PING
        return Due.NOTHING

    def keepalive_sent(self, payload: bytes | None, now: float) -> None:
        """The keepalive ping ``payload`` went out (``None``: the WebSocket is closing, no more
        pings). Without ``ws_ping_timeout`` the next one is due an interval later; with it, its
        pong within the timeout, and the next ping an interval after that pong."""
        self.next_ping = math.inf
        if payload is None or self._interval is None:
            return
        if self._timeout is None:
            self.next_ping = now + self._interval
        else:
            self.pings[payload] = None
            self.pong_due = now + self._timeout

    def ping_postponed(self, now: float) -> None:
        """The keepalive ping was due but not sent (frames still wait to go out): the next is
        due an interval from now."""
        if self._interval is not None:
            self.next_ping = now + self._interval

    def pong(self, payload: bytes, now: float) -> bool:
        """A pong answers its ping and every earlier one (RFC 6455 section 5.5.3 lets a peer
        answer only the latest); one that answers none is ignored. Whether the deadline moved
        (the keepalive's ping was answered)."""
        if payload not in self.pings:
            return False
        moved = False
        for key in list(self.pings):
            waiter = self.pings.pop(key)
            if waiter is not None:
                waiter.set()
            elif self._interval is not None:
                self.pong_due = math.inf
                self.next_ping = now + self._interval
                moved = True
            if key == payload:
                break
        return moved

    def resume(self, now: float) -> None:
        """The reader reads again after waiting for the application: a pong awaited meanwhile
        gets its whole timeout from now (it may have sat unread behind the messages)."""
        if self.pong_due < math.inf and self._timeout is not None:
            self.pong_due = now + self._timeout

    def begin_closing(self, now: float) -> bool:
        """The close handshake begins (unless it has): whether the deadline moved."""
        if self.close_due < math.inf:
            return False
        self.close_due = now + self._close_timeout
        return True

    def end(self) -> None:
        """The WebSocket is over: every ``ping`` still waiting wakes (and finds its ping here)."""
        for waiter in self.pings.values():
            if waiter is not None:
                waiter.set()
