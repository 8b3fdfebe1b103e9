"""One request on its way through a connection: how far its response has gone, and what the
handler or adapter answering it may still learn (the body failed, the client left)."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import trio

from ._errors import ClientDisconnected, ProtocolError

if TYPE_CHECKING:
    from ._channel import _Connection
    from ._head import RequestHead
    from ._request import Request
    from ._response import Response

__all__ = ["Exchange", "Progress"]


class Progress(enum.Enum):
    """How far the response has gone; it only moves forward, in this order."""

    AWAITED = "awaited"
    """No response yet: the handler runs."""
    GIVEN = "given"
    """The response is known (returned, given early, or the body's error in its place)."""
    SENDING = "sending"
    """Its head is serialized and on its way; a streamed body is being written."""
    SENT = "sent"
    """Every byte is handed to the writer's outbox: the exchange has left the connection."""


class Exchange:
    """One request and its response. ``lone`` marks a request whose handler task writes its
    own response (nothing was in flight when it came), until it is handed to the writer."""

    __slots__ = (
        "connection",
        "head",
        "request",
        "body_send",
        "response",
        "progress",
        "ready",
        "done",
        "over",
        "continue_wanted",
        "continue_sent",
        "body_complete",
        "body_error",
        "client_left",
        "abort_if_client_leaves",
        "lone",
        "holds_slot",
        "started",
        "status",
        "sent",
        "sent_pending",
    )

    def __init__(self, connection: _Connection, head: RequestHead | None, started: float) -> None:
        self.connection = connection
        self.head = head
        self.request: Request | None = None
        self.body_send: trio.MemorySendChannel[bytes] | None = None
        self.response: Response | None = None
        self.progress = Progress.AWAITED
        self.ready: trio.Event | None = None
        self.done: trio.Event | None = None
        self.over: trio.Event | None = None
        self.continue_wanted = False
        self.continue_sent = False
        self.body_complete = head is None or not head.has_body
        self.body_error: ProtocolError | None = None
        self.client_left = False
        self.abort_if_client_leaves = False
        self.lone = False
        self.holds_slot = False
        self.started = started
        self.status = 0
        self.sent = 0
        self.sent_pending = 0

    # Giving the response ----------------------------------------------------------------------

    def set_response(self, response: Response) -> None:
        self.response = response
        self.progress = Progress.GIVEN
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
        if self.body_error is not None:
            raise ClientDisconnected(f"the client was answered {self.body_error.status}: {self.body_error.message}")
        if self.progress is not Progress.AWAITED:
            raise RuntimeError("the response to this request was already given")
        await self.connection._respond_early(self, response)

    def want_continue(self) -> None:
        if self.head is not None and self.head.expects_continue and not self.continue_wanted:
            self.continue_wanted = True
            if self.ready is not None:
                self.ready.set()

    # Order: waiting for the response to be written ---------------------------------------------

    async def wait_done(self) -> None:
        """Wait until this exchange's response is written (the event is made only when needed:
        most exchanges are never waited for)."""
        if self.progress is not Progress.SENT:
            if self.done is None:
                self.done = trio.Event()
            await self.done.wait()

    def mark_done(self) -> None:
        self.progress = Progress.SENT
        if self.done is not None:
            self.done.set()
        self._tell_over()

    # What the handler may learn ---------------------------------------------------------------

    @property
    def is_over(self) -> bool:
        """Whether nothing more the handler does reaches the client through this exchange: its
        response is written, its body failed (the client gets the error), or the client left."""
        return self.progress is Progress.SENT or self.body_error is not None or self.client_left

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
        self.abort_if_client_leaves = True
        if self.client_left:
            self._abort_if_unsent()

    def tell_client_left(self) -> None:
        self.client_left = True
        if self.abort_if_client_leaves:
            self._abort_if_unsent()
        self._tell_over()

    def _abort_if_unsent(self) -> None:
        if self.progress is not Progress.SENT:
            self.connection._abort("the client left in the middle of a streamed response")

    def fail_body(self, error: ProtocolError) -> None:
        self.body_error = error
        self._tell_over()

    def _tell_over(self) -> None:
        if self.over is not None:
            self.over.set()
