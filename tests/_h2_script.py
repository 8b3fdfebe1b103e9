"""The client side of the HTTP/2 fuzzer (``_fuzz_h2.py``): a script of client actions played
on h2's client side into bytes (which keeps them valid: stream ids, windows, HPACK), and the
frames h2 would refuse to send, written byte by byte with what h2spec's categories cover.
WebSocket frames on an extended CONNECT's stream (RFC 8441) are made by wsproto's client side."""

from __future__ import annotations

import dataclasses
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.exceptions
import h2.settings
import hpack
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection

PATTERN = bytes(range(251)) * 200
"""Body bytes: a stream's body is a slice of it, so that bodies differ from stream to stream."""

# The script ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Open:
    """A request on a new stream: its body in DATA frames of these sizes, ended or not."""

    method: str
    reads: bool
    chunks: tuple[int, ...]
    end: bool


@dataclasses.dataclass(frozen=True)
class WebSocket:
    """An extended CONNECT for a WebSocket (RFC 8441) on a new stream, then binary messages of
    these sizes as DATA, a close frame or not, the stream ended or not."""

    messages: tuple[int, ...]
    close: bool
    end: bool


@dataclasses.dataclass(frozen=True)
class More:
    """More body (``size`` bytes) on the ``which``-th stream opened, ending it or not."""

    which: int
    size: int
    end: bool


@dataclasses.dataclass(frozen=True)
class Reset:
    """The client resets the ``which``-th stream opened (CANCEL)."""

    which: int


@dataclasses.dataclass(frozen=True)
class Control:
    """A frame that moves no request forward: ``ping``, ``settings`` (a new initial window),
    ``window`` (the connection's window, or a stream's), ``priority``."""

    kind: str
    value: int


@dataclasses.dataclass(frozen=True)
class Raw:
    """A frame h2 would not send, by name (see ``BAD``)."""

    name: str


Action = Open | WebSocket | More | Reset | Control | Raw


@dataclasses.dataclass
class Sent:
    """One stream the client opened: where its frames lie in the stream, what it sent."""

    stream_id: int
    target: str
    method: str
    body: bytes = b""
    ended: bool = False
    reset: bool = False
    first: int = 0
    last: int = 0


@dataclasses.dataclass
class Script:
    """The client's bytes, the streams it opened, and where the first bad frame starts."""

    data: bytes
    streams: list[Sent]
    bad_from: int


def frame(kind: int, flags: int, stream_id: int, payload: bytes, length: int | None = None) -> bytes:
    """A frame written byte by byte (so that it may break any rule); ``length`` may lie."""
    size = len(payload) if length is None else length
    return size.to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big") + payload


def block(fields: list[tuple[str, str]]) -> bytes:
    """A header block that leaves the HPACK tables alone (never-indexed literals), so that the
    h2 client's blocks after it still decode as they meant."""
    return bytes(hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(n, v) for n, v in fields]))


def request_fields(method: str, target: str) -> list[tuple[str, str]]:
    return [(":method", method), (":path", target), (":scheme", "http"), (":authority", "fuzz")]


def websocket_fields(target: str) -> list[tuple[str, str]]:
    return [
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":path", target),
        (":scheme", "http"),
        (":authority", "fuzz"),
        ("sec-websocket-version", "13"),
    ]


class Builder:
    """Plays a script on h2's client side, and appends the raw frames, into bytes."""

    def __init__(self, initial_window: int | None) -> None:
        self.client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.client.initiate_connection()
        if initial_window is not None:
            self.client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window})
        self.out = bytearray(self.client.data_to_send())
        self.streams: list[Sent] = []
        self.next_id = 1
        self.bad_from: int | None = None

    def play(self, actions: list[Action]) -> Script:
        for index, action in enumerate(actions):
            start = len(self.out)
            try:
                self._act(index, action)
            except (h2.exceptions.ProtocolError, h2.exceptions.FlowControlError, ValueError, KeyError):
                pass  # not possible in this state (a window shut, a stream closed): skipped
            if self.client.state_machine.state is h2.connection.ConnectionState.CLOSED:
                break  # h2's client refused an action for good: the script ends here
            self.out += self.client.data_to_send()
            if isinstance(action, Raw) and self.bad_from is None and action.name not in GOOD_RAW:
                self.bad_from = start
        return Script(bytes(self.out), self.streams, len(self.out) if self.bad_from is None else self.bad_from)

    def _act(self, index: int, action: Action) -> None:
        if isinstance(action, Open):
            self._open(index, action)
        elif isinstance(action, WebSocket):
            self._websocket(index, action)
        elif isinstance(action, More):
            if self.streams:
                sent = self.streams[action.which % len(self.streams)]
                self._send_body(sent, action.size, action.end)
        elif isinstance(action, Reset):
            if self.streams:
                sent = self.streams[action.which % len(self.streams)]
                self._flush()
                if sent.stream_id in self.client.streams:
                    self.client.reset_stream(sent.stream_id, h2.errors.ErrorCodes.CANCEL)
                    self._flush()
                else:  # opened by a raw frame: h2's client does not know it
                    self.out += frame(0x3, 0, sent.stream_id, (8).to_bytes(4, "big"))
                sent.reset = True
                sent.last = len(self.out)
        elif isinstance(action, Control):
            self._control(action)
        else:
            self._flush()
            opened = len(self.streams)
            self.out += BAD[action.name](self)
            for sent in self.streams[opened:]:
                sent.last = len(self.out)

    def _flush(self) -> None:
        self.out += self.client.data_to_send()

    def _new_stream(self, method: str, target: str) -> Sent:
        sent = Sent(self.next_id, target, method, first=len(self.out))
        self.next_id += 2
        self.streams.append(sent)
        return sent

    def _open(self, index: int, action: Open) -> None:
        target = f"/{'r' if action.reads else 'n'}{index}"
        self._flush()
        body_sent = action.method == "POST" and action.chunks
        first = len(self.out)
        self.client.send_headers(
            self.next_id, request_fields(action.method, target), end_stream=action.end and not body_sent
        )
        sent = self._new_stream(action.method, target)
        sent.first = first
        sent.ended = action.end and not body_sent
        if body_sent:
            for position, size in enumerate(action.chunks):
                self._send_body(sent, size, action.end and position == len(action.chunks) - 1)
        self._flush()
        sent.last = len(self.out)

    def _websocket(self, index: int, action: WebSocket) -> None:
        target = f"/w{index}"
        self._flush()
        first = len(self.out)
        self.client.send_headers(self.next_id, websocket_fields(target), end_stream=False)
        sent = self._new_stream("CONNECT", target)
        sent.first = first
        frames = Connection(ConnectionType.CLIENT)
        data = b"".join(frames.send(BytesMessage(PATTERN[:size])) for size in action.messages)
        if action.close:
            data += frames.send(CloseConnection(1000))
        self._send_data(sent, data, action.end)
        self._flush()
        sent.last = len(self.out)

    def _send_data(self, sent: Sent, data: bytes, end: bool) -> None:
        """``data`` in frames as large as allowed, as far as the window lets it go."""
        view = memoryview(data)
        while view:
            size = min(
                len(view), self.client.local_flow_control_window(sent.stream_id), self.client.max_outbound_frame_size
            )
            if size <= 0:
                return
            self.client.send_data(sent.stream_id, bytes(view[:size]))
            sent.body += view[:size]
            view = view[size:]
        if end:
            self.client.end_stream(sent.stream_id)
            sent.ended = True

    def _send_body(self, sent: Sent, size: int, end: bool) -> None:
        if sent.ended or sent.reset:
            return
        size = min(size, self.client.local_flow_control_window(sent.stream_id), self.client.max_outbound_frame_size)
        start = (sent.stream_id + len(sent.body)) % 251
        data = PATTERN[start : start + size]
        self.client.send_data(sent.stream_id, data, end_stream=end)
        sent.body += data
        sent.ended = end
        self._flush()
        sent.last = len(self.out)

    def _control(self, action: Control) -> None:
        if action.kind == "ping":
            self.client.ping(action.value.to_bytes(8, "big"))
        elif action.kind == "settings":
            self.client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: action.value})
        elif action.kind == "window":
            open_ids = [s.stream_id for s in self.streams if not s.reset]
            stream_id = open_ids[action.value % len(open_ids)] if open_ids and action.value % 3 else None
            self.client.increment_flow_control_window(1 + action.value, stream_id=stream_id)
        elif self.streams:
            self.client.prioritize(
                self.streams[action.value % len(self.streams)].stream_id, weight=1 + action.value % 256
            )


def _raw_request(builder: Builder, fields: list[tuple[str, str]], *, split: bool = False) -> bytes:
    sent = builder._new_stream(fields[0][1], dict(fields).get(":path", "-"))
    sent.ended = True
    payload = block(fields)
    if not split:
        return frame(0x1, 0x1 | 0x4, sent.stream_id, payload)
    half = len(payload) // 2
    return frame(0x1, 0x1, sent.stream_id, payload[:half]) + frame(0x9, 0x4, sent.stream_id, payload[half:])


def _on_open_stream(builder: Builder) -> int:
    open_ids = [s.stream_id for s in builder.streams if not s.reset and not s.ended]
    return open_ids[0] if open_ids else builder.next_id


def _rapid_reset(builder: Builder) -> bytes:
    out = b""
    for _ in range(12):
        sent = builder._new_stream("GET", "/rr")
        sent.ended = sent.reset = True
        out += frame(0x1, 0x1 | 0x4, sent.stream_id, block(request_fields("GET", "/rr"))) + frame(
            0x3, 0, sent.stream_id, (8).to_bytes(4, "big")
        )
    return out


BAD: dict[str, Any] = {
    "split-request": lambda b: _raw_request(b, request_fields("GET", f"/r-split{b.next_id}"), split=True),
    "uppercase-field": lambda b: _raw_request(b, request_fields("GET", "/bad") + [("X-Upper", "1")]),
    "connection-field": lambda b: _raw_request(b, request_fields("GET", "/bad") + [("connection", "close")]),
    "no-path": lambda b: _raw_request(b, [(":method", "GET"), (":scheme", "http"), (":authority", "fuzz")]),
    "unknown-type": lambda b: frame(0xEE, 0, 0, b"whatever"),
    "data-on-stream-0": lambda b: frame(0x0, 0, 0, b"data"),
    "headers-on-even-stream": lambda b: frame(0x1, 0x5, 2, block(request_fields("GET", "/even"))),
    "zero-window-update": lambda b: frame(0x8, 0, 0, (0).to_bytes(4, "big")),
    "window-overflow": lambda b: frame(0x8, 0, 0, (2**31 - 1).to_bytes(4, "big")) * 2,
    "frame-too-large": lambda b: frame(0x0, 0, _on_open_stream(b), b"x" * 20000),
    "length-lies": lambda b: frame(0x6, 0, 0, b"12345678", length=200),
    "rst-on-idle-stream": lambda b: frame(0x3, 0, b.next_id + 200, (8).to_bytes(4, "big")),
    "continuation-alone": lambda b: frame(0x9, 0x4, 1, b"\x82"),
    "headers-then-ping": lambda b: frame(0x1, 0x1, b.next_id, b"\x82") + frame(0x6, 0, 0, b"12345678"),
    "bad-enable-push": lambda b: frame(0x4, 0, 0, (2).to_bytes(2, "big") + (2).to_bytes(4, "big")),
    "short-ping": lambda b: frame(0x6, 0, 0, b"1234"),
    "bad-padding": lambda b: frame(0x0, 0x8, _on_open_stream(b), bytes([200]) + b"abc"),
    "self-dependency": lambda b: frame(0x2, 0, 1, (1).to_bytes(4, "big") + b"\x10"),
    "push-promise": lambda b: frame(0x5, 0x4, 1, (2).to_bytes(4, "big") + b"\x82"),
    "goaway": lambda b: frame(0x7, 0, 0, (0).to_bytes(4, "big") + (0).to_bytes(4, "big")),
    "settings-flood": lambda b: frame(0x4, 0, 0, b"") * 40,
    "ping-flood": lambda b: b"".join(frame(0x6, 0, 0, i.to_bytes(8, "big")) for i in range(40)),
    "empty-data-flood": lambda b: frame(0x0, 0, _on_open_stream(b), b"") * 40,
    "rapid-reset": _rapid_reset,
    "hpack-garbage": lambda b: frame(0x1, 0x5, b.next_id, b"\xff\xff\xff\xff\x7f"),
}
GOOD_RAW = frozenset({"split-request", "unknown-type"})
"""Raw frames a server must take as good ones (a request split over CONTINUATION; a frame of
an unknown type, to be ignored): they do not end the part of the stream the echoes are
checked on."""
