"""One HTTP/2 stream: one request and its response, the exchange a handler's adapter sees.

A stream's response moves through :class:`Phase` by the transitions written once in
``_NEXT``. Its request body waits in ``inbox`` (bounded by the stream's flow-control window,
which is reopened only as the handler takes the chunks); its response body waits in
``outbox``, one chunk at a time, for the connection's writer.

A stream may be a WebSocket's (:class:`Tunnel`, RFC 8441): its DATA then carries the
WebSocket's frames both ways, and each side ends it with END_STREAM when the close handshake
is over.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import TYPE_CHECKING

import trio

from .._errors import ClientDisconnected, ProtocolError

if TYPE_CHECKING:
    from .._request import Request
    from .._response import HeaderPairs, Response
    from ._exchanges import Exchanges

__all__ = ["Phase", "Stream", "Tunnel"]


class Phase(enum.Enum):
    """Where a stream's response is."""

    AWAITING = "awaiting the response"
    STREAMING = "headers sent, the body under way"
    ENDING = "the frame with END_STREAM is queued for the writer"
    SENT = "that frame is written; a WebSocket's stream waits for the client's END_STREAM"
    CLOSED = "the stream is over: both sides ended it, or it was reset"


_NEXT = {
    Phase.AWAITING: frozenset({Phase.STREAMING, Phase.ENDING, Phase.CLOSED}),
    Phase.STREAMING: frozenset({Phase.ENDING, Phase.CLOSED}),
    Phase.ENDING: frozenset({Phase.SENT, Phase.CLOSED}),
    Phase.SENT: frozenset({Phase.CLOSED}),
    Phase.CLOSED: frozenset(),
}


class Tunnel(enum.Enum):
    """What a stream's DATA is: a request body, or a WebSocket's frames (RFC 8441)."""

    NONE = "an ordinary request: DATA is its body, bounded by max_body_size"
    OFFERED = "an extended CONNECT for a WebSocket, not answered yet: its DATA waits for the session"
    OPEN = "a WebSocket accepted with 200: DATA carries its frames both ways, until each side ends it"


class Stream:
    """One stream of a connection, and the :class:`~trio_httpchannel._request.Exchange` of its
    request: an adapter may give the response early and wait for it to be sent."""

    __slots__ = (
        "id",
        "connection",
        "method",
        "request",
        "response",
        "phase",
        "request_ended",
        "inbox",
        "inbox_changed",
        "received",
        "body_error",
        "left",
        "outbox",
        "out_end",
        "trailers",
        "drained",
        "blocked_since",
        "scopes",
        "sent",
        "started",
        "status",
        "done",
        "over",
        "tunnel",
    )

    def __init__(self, connection: Exchanges, stream_id: int, method: str, request_ended: bool) -> None:
        self.id = stream_id
        self.connection = connection
        self.method = method
        self.request: Request | None = None
        self.response: Response | None = None
        self.phase = Phase.AWAITING
        self.request_ended = request_ended
        self.inbox: deque[tuple[bytes, int]] = deque()
        self.inbox_changed: trio.Event | None = None
        self.received = 0
        self.body_error: ProtocolError | None = None
        self.left = False
        self.outbox: memoryview | None = None
        self.out_end = False
        self.trailers: list[tuple[bytes, bytes]] | None = None
        """The trailers to end the response with (a last HEADERS frame), once its body ended."""
        self.drained: trio.Event | None = None
        self.blocked_since: float | None = None
        self.scopes: list[trio.CancelScope] = []
        self.sent = 0
        self.started = 0.0
        self.status = 0
        self.done: trio.Event | None = None
        self.over: trio.Event | None = None
        self.tunnel = Tunnel.NONE

    def advance(self, phase: Phase) -> None:
        """Move the response to ``phase``, which must follow the current one."""
        if phase not in _NEXT[self.phase]:
            raise RuntimeError(f"stream {self.id}: {self.phase.name} cannot become {phase.name}")
        self.phase = phase

    # The Exchange protocol ----------------------------------------------------------------------

    async def respond_early(self, response: Response) -> None:
        """Give ``response`` before the handler returns (what it returns is then ignored)."""
        await self.connection.respond_early(self, response)

    async def send_informational(self, status: int, headers: HeaderPairs) -> None:
        """Send a 1xx response (``103 Early Hints``) now, before the final response; dropped
        once that is given or the stream is over."""
        self.connection.sender.inform(self, status, headers)
        await trio.lowlevel.checkpoint()

    async def wait_done(self) -> None:
        """Wait until the response is sent, or the stream reset."""
        if self.phase is not Phase.CLOSED:
            if self.done is None:
                self.done = trio.Event()
            await self.done.wait()

    @property
    def is_over(self) -> bool:
        """Whether nothing more the handler does reaches the client through this stream: its
        response is sent, the stream was reset (the client left), or its body failed."""
        return self.phase is Phase.CLOSED or self.body_error is not None

    async def wait_over(self) -> None:
        """Wait until :attr:`is_over`."""
        if not self.is_over:
            if self.over is None:
                self.over = trio.Event()
            await self.over.wait()

    def abort_on_client_left(self) -> None:
        """Nothing to arrange: a client leaving resets the stream, which cancels its handler
        (HTTP/2 cancels a stream, never the whole connection, for one request)."""

    def _tell_over(self) -> None:
        if self.over is not None:
            self.over.set()

    # The request body ---------------------------------------------------------------------------

    def put_body(self, data: bytes, flow: int) -> None:
        """The reader received ``data`` (``flow`` bytes of window, padding included)."""
        self.inbox.append((data, flow))
        self._wake_reader()

    def end_body(self) -> None:
        self.request_ended = True
        self._wake_reader()

    def fail_body(self, error: ProtocolError) -> None:
        self.body_error = error
        self._wake_reader()
        self._tell_over()

    def _wake_reader(self) -> None:
        if self.inbox_changed is not None:
            self.inbox_changed.set()
            self.inbox_changed = None

    async def next_chunk(self, timeout: float) -> tuple[bytes, int] | None:
        """The next chunk of the body and its flow-controlled size, ``None`` at its end; raises
        the body's error, 408 when nothing comes within ``timeout`` seconds, and once the
        stream is over ``ClientDisconnected`` (it was reset, or the connection ended, before
        the response went out) or ``trio.ClosedResourceError`` (the response is sent). What
        was received and not taken is dropped when the stream ends, so a stream that is over
        never ends its body as if it were complete."""
        while not self.inbox:
            if self.body_error is not None:
                raise self.body_error
            if self.phase is Phase.CLOSED:
                if self.left:
                    raise ClientDisconnected("the stream was reset before its request body was read")
                raise trio.ClosedResourceError("the response is sent: the rest of the request body is discarded")
            if self.request_ended:
                return None
            changed = self.inbox_changed = trio.Event()
            with trio.move_on_after(timeout):
                await changed.wait()
            if not changed.is_set():
                self.inbox_changed = None
                raise ProtocolError(408, "the request body stalled for longer than body_timeout")
        return self.inbox.popleft()

    def take_unread(self) -> int:
        """Drop what the handler will never read; the window it held, to give back."""
        flow = sum(size for _, size in self.inbox)
        self.inbox.clear()
        self._wake_reader()
        return flow

    # The response body --------------------------------------------------------------------------

    def finish(self) -> None:
        """The stream is over: wake whoever waits on it. Over before its response was written
        whole (reset, or the connection ended), it is one its client ``left``."""
        self.left = self.phase is not Phase.ENDING and self.phase is not Phase.SENT
        self.phase = Phase.CLOSED
        self.outbox = None
        self.blocked_since = None
        self._wake_reader()
        if self.drained is not None:
            self.drained.set()
        if self.done is not None:
            self.done.set()
        self._tell_over()
