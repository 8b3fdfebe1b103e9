"""One request on its way through a connection: how far its response has gone, and what the
handler or adapter answering it may still learn (the body failed, the client left)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import trio

from ._errors import ClientDisconnected, ProtocolError
from ._state import (
    ABSENT,
    AWAITED,
    BODY,
    CLIENT,
    COMPLETE,
    CONTINUE,
    EXPECTED,
    FAILED,
    GIVEN,
    LEFT,
    NOT_EXPECTED,
    PRESENT,
    PROGRESS,
    SENT,
    STREAMING,
    WANTED,
    WATCHED,
    Dispatch,
    advance,
)

if TYPE_CHECKING:
    from ._request import Request
    from ._response import HeaderPairs, Response

__all__ = ["Carrier", "Head", "Exchange"]


class Head(Protocol):
    """What an exchange needs of its request's head, whatever the protocol parsed it."""

    @property
    def has_body(self) -> bool: ...

    @property
    def expects_continue(self) -> bool: ...


H = TypeVar("H", bound=Head)


class Carrier(Protocol):
    """What carries exchanges: an HTTP/1.1 connection (an HTTP/2 stream will be one too)."""

    def abort(self, reason: str) -> None:
        """End the connection at once; every request in flight is told its client is gone."""

    async def respond_early(self, exchange: Exchange[Any], response: Response) -> None:
        """Send ``response`` to ``exchange``'s request before its handler returns."""

    async def send_informational(self, exchange: Exchange[Any], status: int, headers: HeaderPairs) -> None:
        """Send an informational (1xx) response to ``exchange``'s request now, if it can go
        before the final one; drop it otherwise."""


class Exchange(Generic[H]):
    """One request and its response, and where each stands: its machines are ``_state.py``'s
    (``progress``, ``body``, ``continue_``, ``dispatch``, ``client``), every move checked there.

    ``head`` is the request's head as its protocol parsed it (``None`` for a request refused
    before its head could be parsed)."""

    __slots__ = (
        "connection",
        "head",
        "request",
        "body_send",
        "response",
        "progress",
        "body",
        "body_error",
        "continue_",
        "dispatch",
        "client",
        "ready",
        "done",
        "over",
        "started",
        "status",
        "sent",
        "sent_pending",
    )

    def __init__(self, connection: Carrier, head: H | None, started: float, dispatch: Dispatch) -> None:
        self.connection = connection
        self.head = head
        self.request: Request | None = None
        self.body_send: trio.MemorySendChannel[bytes] | None = None
        self.response: Response | None = None
        self.progress = AWAITED
        self.body = STREAMING if head is not None and head.has_body else ABSENT
        self.body_error: ProtocolError | None = None
        """The error the body failed with (``body`` is ``FAILED``): the client's answer."""
        self.continue_ = EXPECTED if head is not None and head.expects_continue else NOT_EXPECTED
        self.dispatch = dispatch
        self.client = PRESENT
        self.ready: trio.Event | None = None
        self.done: trio.Event | None = None
        self.over: trio.Event | None = None
        self.started = started
        self.status = 0
        self.sent = 0
        self.sent_pending = 0

    # Giving the response ----------------------------------------------------------------------

    def set_response(self, response: Response) -> None:
        self.response = response
        self.progress = advance(PROGRESS, self.progress, GIVEN)
        if self.ready is not None:
            self.ready.set()

    async def wait_ready(self) -> None:
        """Wait until the response is given or the handler starts reading the body (for
        ``100 Continue``); the event is made only when someone waits."""
        if self.ready is None:
            self.ready = trio.Event()
        await self.ready.wait()

    async def respond_early(self, response: Response) -> None:
        """Give ``response`` before the handler returns (see ``Request._exchange``). Raises
        :class:`ClientDisconnected` when the client gets another answer (its body failed)."""
        error = self.body_error
        if error is not None:
            raise ClientDisconnected(f"the client was answered {error.status}: {error.message}")
        if self.progress is not AWAITED:
            raise RuntimeError("the response to this request was already given")
        await self.connection.respond_early(self, response)

    async def send_informational(self, status: int, headers: HeaderPairs) -> None:
        """Send an informational response (``103 Early Hints``) ahead of the final one, where
        the protocol allows it and nothing else is in the way; otherwise it is dropped (hints
        are advisory). Raises ``ValueError`` for a header that cannot be sent."""
        if self.progress is AWAITED:
            await self.connection.send_informational(self, status, headers)

    def want_continue(self) -> None:
        """The handler starts reading the body: a client waiting for ``100 Continue`` gets it."""
        if self.continue_ is EXPECTED:
            self.continue_ = advance(CONTINUE, EXPECTED, WANTED)
            if self.ready is not None:
                self.ready.set()

    # Order: waiting for the response to be written ---------------------------------------------

    async def wait_done(self) -> None:
        """Wait until this exchange's response is written (the event is made only when needed:
        most exchanges are never waited for)."""
        if self.progress is not SENT:
            if self.done is None:
                self.done = trio.Event()
            await self.done.wait()

    def mark_done(self) -> None:
        self.progress = advance(PROGRESS, self.progress, SENT)
        if self.done is not None:
            self.done.set()
        self._tell_over()

    # What the handler may learn ---------------------------------------------------------------

    @property
    def is_over(self) -> bool:
        """Whether nothing more the handler does reaches the client through this exchange: its
        response is written, its body failed (the client gets the error), or the client left."""
        return self.progress is SENT or self.body is FAILED or self.client is LEFT

    async def wait_over(self) -> None:
        """Wait until :attr:`is_over`."""
        if not self.is_over:
            if self.over is None:
                self.over = trio.Event()
            await self.over.wait()

    def abort_on_client_left(self) -> None:
        """Abort the connection if the client's side ends before this response is written (at
        once if it already has). The ASGI adapter asks this for a streamed response: such an
        app stops only when cancelled, and the abort cancels it with the cut stream."""
        if self.client is LEFT:
            self._abort_if_unsent()
        else:
            self.client = advance(CLIENT, self.client, WATCHED)

    def tell_client_left(self) -> None:
        watched = self.client is WATCHED
        self.client = advance(CLIENT, self.client, LEFT)
        if watched:
            self._abort_if_unsent()
        self._tell_over()

    def _abort_if_unsent(self) -> None:
        if self.progress is not SENT:
            self.connection.abort("the client left in the middle of a streamed response")

    def end_body(self) -> None:
        """The body was read to its end."""
        self.body = advance(BODY, self.body, COMPLETE)

    def fail_body(self, error: ProtocolError) -> None:
        self.body_error = error
        self.body = advance(BODY, self.body, FAILED)
        self._tell_over()

    def _tell_over(self) -> None:
        if self.over is not None:
            self.over.set()
