"""One open WebSocket's protocol state, after the handshake (sans-io).

wsproto parses and serializes frames and enforces RFC 6455's framing rules: masking, opcodes,
reserved bits, control frames (whole, at most 125 bytes), continuation order, UTF-8 in text and
in close reasons, close codes. Each broken rule ends its parsing with a close code (1002, or
1007 for bad UTF-8). Added here: whole messages out of wsproto's fragments, ``max_size`` on them
(1009), the close handshake's state as the server sees it, and which close code the application
is told.

The protocol drives wsproto's ``FrameProtocol`` (frames in, frames out), not its ``Connection``,
which wraps it in a deque, a second generator, an event object per frame and a state check per
frame sent (a fifth of the instructions of a 1 KiB echo besides wsproto's parsing): what
``Connection`` adds, the close handshake's states, is kept here in ``_wire``, with the same
transitions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import NamedTuple

from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, Pong, TextMessage
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason as Codes
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

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

    __slots__ = ("_frames", "_max_size", "_parts", "_size", "_wire", "close_reason", "state")

    def __init__(self, extensions: list[Extension], max_size: int, trailing_data: bytes = b"") -> None:
        self._frames = FrameProtocol(False, extensions)
        self._frames.receive_bytes(trailing_data)
        self._wire = ConnectionState.OPEN
        """The close frames sent and received, as wsproto's ``Connection`` keeps them: ``OPEN``
        (neither), ``LOCAL_CLOSING`` (ours sent), ``REMOTE_CLOSING`` (the client's received),
        ``CLOSED`` (both). It says which frames may still be sent."""
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
        if self.state is State.OPEN or self.state is State.LOCAL_CLOSING:
            self._frames.receive_bytes(data)

    def events(self) -> Iterator[ProtocolEvent]:
        """What the bytes fed so far mean. Ends with :class:`Closed` once the reading is over."""
        if not self.reading:
            return
        try:
            for frame in self._frames.received_frames():
                opcode = frame.opcode
                if opcode is Opcode.BINARY or opcode is Opcode.TEXT:
                    data: Data = frame.payload  # type: ignore[assignment]
                    # The message's size so far, in bytes (UTF-8 bytes for text).
                    size = len(data) if type(data) is bytes or data.isascii() else len(data.encode())  # type: ignore[union-attr]
                    size += self._size
                    if size > self._max_size:
                        yield from self._fail(Codes.MESSAGE_TOO_BIG, f"a message is longer than {self._max_size} bytes")
                        return
                    if frame.message_finished and not self._parts:
                        self._size = 0
                        if self.state is State.OPEN:
                            yield Message(data)
                    else:
                        self._size = size
                        message = self._add_fragment(data, frame.message_finished)
                        if message is not None:
                            yield message
                elif opcode is Opcode.PING:
                    if self.state is State.OPEN:
                        yield Reply(Pong(frame.payload))  # type: ignore[arg-type]
                elif opcode is Opcode.PONG:
                    yield PongReceived(bytes(frame.payload))  # type: ignore[arg-type]
                elif opcode is Opcode.CLOSE:
                    close: tuple[int, str] = frame.payload  # type: ignore[assignment]
                    yield from self._close_received(*close)
                    return
        except ParseFailed as error:
            reason = (
                "a compressed message is longer than the limit" if error.code == Codes.MESSAGE_TOO_BIG else str(error)
            )
            yield from self._fail(error.code, reason)

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
        wire = self._wire
        if type(event) is BytesMessage or type(event) is TextMessage:
            if wire is not ConnectionState.OPEN:
                return None
            return bytes(self._frames.send_data(event.data, event.message_finished))
        if isinstance(event, CloseConnection):
            if wire is ConnectionState.OPEN:
                self._wire = ConnectionState.LOCAL_CLOSING
            elif wire is ConnectionState.REMOTE_CLOSING:
                self._wire = ConnectionState.CLOSED
            else:
                return None
            if self.state is State.REMOTE_CLOSING:
                self.state = State.CLOSED
            return bytes(self._frames.close(event.code, event.reason))
        if wire is not ConnectionState.OPEN:
            return None
        if isinstance(event, Ping):
            return bytes(self._frames.ping(event.payload))
        if isinstance(event, Pong):
            return bytes(self._frames.pong(event.payload))
        raise TypeError(f"a WebSocket sends messages, pings, pongs and close frames, not {type(event).__name__}")

    def encode_message(self, data: Data) -> bytes | None:
        """The frame of a whole message (text for ``str``, binary for ``bytes``), as :meth:`encode`
        makes it for a message event; ``None`` once the close handshake overtook it."""
        if self._wire is not ConnectionState.OPEN:
            return None
        return bytes(self._frames.send_data(data))

    def _add_fragment(self, data: Data, message_finished: bool) -> Message | None:
        """The whole message once a fragment (``data``) finishes it; ``None`` before, and for a
        message that arrives after our close frame (dropped: the application said it is done)."""
        if not message_finished:
            self._parts.append(data)
            return None
        self._parts.append(data)
        data = "".join(self._parts) if isinstance(data, str) else b"".join(self._parts)  # type: ignore[arg-type]
        self._parts = []
        self._size = 0
        return Message(data) if self.state is State.OPEN else None

    def _close_received(self, code: int, reason: str) -> Iterator[ProtocolEvent]:
        """The client's close frame: answered (unless ours was sent first) and reported."""
        self.close_reason = CloseReason(int(code), reason or "")
        if self._wire is ConnectionState.LOCAL_CLOSING:
            self._wire = ConnectionState.CLOSED
            self.state = State.CLOSED
            yield Closed(self.close_reason)
        else:
            self._wire = ConnectionState.REMOTE_CLOSING
            self.state = State.REMOTE_CLOSING
            yield Reply(CloseConnection(code, reason))
            yield Closed(self.close_reason)

    def _fail(self, code: int, reason: str) -> Iterator[ProtocolEvent]:
        """The client broke a rule: close with ``code`` (the WebSocket is failed, RFC 6455 section
        7.1.7: its further bytes are not parsed)."""
        owes_close = self.state is State.OPEN
        self.state = State.CLOSED
        self.close_reason = CloseReason(int(code), reason)
        if owes_close:
            yield Reply(CloseConnection(code, reason))
        yield Closed(self.close_reason)
