"""The WebSockets open on one channel, so that its graceful shutdown can close each with 1001.

An upgraded connection no longer reads HTTP requests, so the HTTP/1.1 channel's shutdown (stop
reading, close when idle) cannot reach it. Instead every :class:`Session` adds itself here while
it runs, and the channel's ``shutdown`` calls :meth:`OpenWebSockets.going_away`: each open
WebSocket starts its close handshake with ``1001`` ("going away", RFC 6455 section 7.4.1), and
so does one opened after it (its handler accepted while the server was stopping). The close
handshake then has ``ws_close_timeout``; the server's own ``graceful_timeout`` bounds it all.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["GOING_AWAY", "OpenWebSockets"]

GOING_AWAY = 1001
"""The close code of a WebSocket closed because the server shuts down."""


class _Closable(Protocol):
    def going_away(self) -> None: ...


class OpenWebSockets:
    """The sessions running on one channel, and whether it is shutting down.

    ``going_away`` is synchronous (the channel's ``shutdown`` is): each session starts its close
    in a task of its own.
    """

    __slots__ = ("_sessions", "closing")

    def __init__(self) -> None:
        self._sessions: set[_Closable] = set()
        self.closing = False
        """Whether :meth:`going_away` was called: a session added from now on closes at once."""

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session: _Closable) -> None:
        """``session`` runs: it is closed at shutdown (at once if that has begun)."""
        if self.closing:
            session.going_away()
        self._sessions.add(session)

    def discard(self, session: _Closable) -> None:
        """``session`` has ended."""
        self._sessions.discard(session)

    def going_away(self) -> None:
        """Close every open WebSocket with 1001, and every one opened from now on."""
        self.closing = True
        for session in list(self._sessions):
            session.going_away()
