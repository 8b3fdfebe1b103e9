"""One open WebSocket's protocol state, after the handshake (sans-io).

wsproto parses and serializes frames and enforces RFC 6455's framing rules: masking, opcodes,
reserved bits, control frames (whole, at most 125 bytes), continuation order, UTF-8 in text and
in close reasons, close codes. Each broken rule ends its parsing with a close code (1002, or
1007 for bad UTF-8). Added here: whole messages out of wsproto's fragments, ``max_size`` on them
(1009), the close handshake's state as the server sees it, and which close code the application
is told.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import NamedTuple

from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, Pong, TextMessage
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason as Codes
from wsproto.utilities import LocalProtocolError

from ._errors import CloseReason

__all__ = ["Closed", "Message", "PongReceived", "Reply", "State", "WebSocketProtocol", "check_close_code"]

Data = str | bytes


def check_close_code(code: int) -> None:
    """Raise ``ValueError`` unless ``code`` may be sent in a close frame (RFC 6455 section 7.4)."""
    if isinstance(code, bool) or not isinstance(code, int) or not (code in _SENDABLE or 3000 <= code <= 4999):
        raise ValueError(f"{code!r} is not a close code an endpoint may send (1000-1003, 1007-1014, 3000-4999)")


_SENDABLE = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


class State(enum.Enum):
    """Where a WebSocket is in its close handshake, as this server sees it.

    ``OPEN`` --our close--> ``LOCAL_CLOSING`` --the client's close--> ``CLOSED``;
    ``OPEN`` --the client's close--> ``REMOTE_CLOSING`` --our answer written--> ``CLOSED``;
    ``OPEN`` or ``LOCAL_CLOSING`` --a broken rule, or the connection lost--> ``CLOSED``.
    """

    OPEN = "open"
    """Messages go both ways."""
    LOCAL_CLOSING = "local closing"
    """Our close frame is on its way; the client's is awaited (its messages are dropped)."""
    REMOTE_CLOSING = "remote closing"
    """The client's close frame arrived; our answer is on its way."""
    CLOSED = "closed"
    """Nothing more is read, and nothing but a close frame still queued is written."""


class Message(NamedTuple):
    """A whole message from the client, its fragments joined."""

    data: Data


class Reply(NamedTuple):
    """A frame the protocol itself owes the client: a pong, or a close frame."""

    event: Event


class PongReceived(NamedTuple):
    """The client answered a ping."""

    payload: bytes


class Closed(NamedTuple):
    """Nothing more will be received: the client closed, broke a rule, or the connection was
    lost. ``reason`` is what the application is told."""

    reason: CloseReason


ProtocolEvent = Message | Reply | PongReceived | Closed


class WebSocketProtocol:
    """The server side of one WebSocket after its ``101``: bytes in, :class:`Message`,
    :class:`Reply`, :class:`PongReceived` and :class:`Closed` out; frames to send out of wsproto
    events, with the close handshake's :class:`State` kept in step.

    ``trailing_data`` is what arrived after the handshake's head: the client may send its first
    frames without waiting for the ``101``.
    """

    __slots__ = ("_connection", "_max_size", "_parts", "_size", "close_reason", "state")

    def __init__(self, extensions: list[Extension], max_size: int, trailing_data: bytes = b"") -> None:
        self._connection = Connection(ConnectionType.SERVER, extensions=extensions, trailing_data=trailing_data)
        self._max_size = max_size
        self._parts: list[Data] = []
        self._size = 0
        self.state = State.OPEN
        self.close_reason: CloseReason | None = None
        """Why the WebSocket ended, once it has: the client's close code (1005 when its close
        frame had none), the code we failed it with, or 1006 when the connection was lost."""

    @property
    def reading(self) -> bool:
        """Whether received bytes still mean something (the client's close frame has not come)."""
        return self.state is State.OPEN or self.state is State.LOCAL_CLOSING

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the client; then take :meth:`events`."""
        if self.reading:
            self._connection.receive_data(data)

    def events(self) -> Iterator[ProtocolEvent]:
        """What the bytes fed so far mean. Ends with :class:`Closed` once the reading is over."""
        if not self.reading:
            return
        for event in self._connection.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                if self._too_big(_data(event)):
                    yield from self._fail(Codes.MESSAGE_TOO_BIG, f"a message is longer than {self._max_size} bytes")
                    return
                message = self._add_fragment(event)
                if message is not None:
                    yield message
            elif isinstance(event, Ping):
                if self.state is State.OPEN:
                    yield Reply(event.response())
            elif isinstance(event, Pong):
                yield PongReceived(bytes(event.payload))
            elif isinstance(event, CloseConnection):
                yield from self._close_received(event)
                return

    def connection_lost(self) -> Closed | None:
        """The connection ended without the client's close frame (end of file, reset): 1006."""
        if self.state is State.CLOSED or self.state is State.REMOTE_CLOSING:
            return None
        self.state = State.CLOSED
        self.close_reason = CloseReason(int(Codes.ABNORMAL_CLOSURE))
        return Closed(self.close_reason)

    def start_close(self, code: int, reason: str) -> CloseConnection | None:
        """Begin the close handshake from our side: the close frame to send, or ``None`` when it
        is under way already."""
        if self.state is not State.OPEN:
            return None
        self.state = State.LOCAL_CLOSING
        return CloseConnection(code, reason)

    def encode(self, event: Event) -> bytes | None:
        """The bytes of ``event``, at the moment they are written, so frames are compressed in the
        order the client reads them. ``None`` when the close handshake overtook the event (a
        message after our close frame, a second close frame): it is dropped."""
        try:
            data = self._connection.send(event)
        except LocalProtocolError:
            return None
        if isinstance(event, CloseConnection) and self.state is State.REMOTE_CLOSING:
            self.state = State.CLOSED
        return data

    def _too_big(self, data: Data) -> bool:
        """Count a fragment's bytes (UTF-8 bytes for text) into its message's size."""
        self._size += len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
        return self._size > self._max_size

    def _add_fragment(self, event: TextMessage | BytesMessage) -> Message | None:
        """The whole message once ``event`` finishes it; ``None`` before, and for a message that
        arrives after our close frame (dropped: the application said it is done)."""
        data = _data(event)
        if not event.message_finished:
            self._parts.append(data)
            return None
        if self._parts:
            self._parts.append(data)
            data = "".join(self._parts) if isinstance(data, str) else b"".join(self._parts)  # type: ignore[arg-type]
            self._parts = []
        self._size = 0
        return Message(data) if self.state is State.OPEN else None

    def _close_received(self, event: CloseConnection) -> Iterator[ProtocolEvent]:
        after = self._connection.state
        if after is ConnectionState.REMOTE_CLOSING:
            self.state = State.REMOTE_CLOSING
            self.close_reason = CloseReason(int(event.code), event.reason or "")
            yield Reply(event.response())
            yield Closed(self.close_reason)
        elif after is ConnectionState.CLOSED:
            self.state = State.CLOSED
            self.close_reason = CloseReason(int(event.code), event.reason or "")
            yield Closed(self.close_reason)
        else:
            reason = (
                "a compressed message is longer than the limit" if event.code == Codes.MESSAGE_TOO_BIG else event.reason
            )
            yield from self._fail(event.code, reason or "")

    def _fail(self, code: int, reason: str) -> Iterator[ProtocolEvent]:
        """The client broke a rule: close with ``code`` (the WebSocket is failed, RFC 6455 section
        7.1.7: its further bytes are not parsed)."""
        owes_close = self.state is State.OPEN
        self.state = State.CLOSED
        self.close_reason = CloseReason(int(code), reason)
        if owes_close:
            yield Reply(CloseConnection(code, reason))
        yield Closed(self.close_reason)


def _data(event: TextMessage | BytesMessage) -> Data:
    """A fragment's payload (wsproto types binary payloads loosely; it gives ``bytes``)."""
    data = event.data
    return data if isinstance(data, (str, bytes)) else bytes(data)
