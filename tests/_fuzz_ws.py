"""The WebSocket fuzz model of ``test_fuzz_ws.py``: random client frame streams into one upgraded
connection, over memory streams or a socket pair under the MockClock.

Each example opens a WebSocket (after 0 to 2 plain requests on the same connection, with or
without a permessage-deflate offer) and sends items: whole messages (text or binary, in 1 to 4
fragments split anywhere, UTF-8 too, compressed when deflate is on, with pings between the
fragments), pings, unsolicited pongs, a close (with or without a code and reason) and bad input
of every kind the server must refuse, each masked with a random key; then maybe more items
after the first close or bad one. The stream may be damaged (byte flips, insertions,
deletions, a truncation) after the handshake, is split into reads at random places with random
pauses, and ends by keeping the connection open (until the server closes it, or a long silence),
half-closing or aborting. The client reads what the server writes, slowly or not, buffered,
lockstep, or through a socket pair (where an idle WebSocket's reader settles, ``_inbox.py``). The server's handler echoes messages, slowly or not, or closes with 4000 after some.

The invariants checked after each example are in ``_fuzz_ws_run.py``, which runs it.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

from _fuzz import Damage, damages
from hypothesis import strategies as st

HANG_BOUND = 1_000_000.0
QUIET = 5_000.0
"""MockClock seconds a client keeping the connection open waits for the server to close it,
before it aborts (a server with no keepalive legitimately waits for a silent client forever)."""
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
RSV1 = 0b100
MAX_SIZE = 300
CLOSING_HANDLER_CODE = 4000
SENDABLE = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)})
RECEIVABLE = frozenset({1000, 1001, 1002, 1003, *range(1007, 1014), *range(3000, 5000)})
"""Close codes a client may send (wsproto refuses 1014 too)."""
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
GET = b"GET /plain HTTP/1.1\r\nHost: fuzz\r\n\r\n"


# The model -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Frame:
    """One frame as the client writes it; ``key`` None means unmasked (a protocol error)."""

    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0
    key: bytes | None = b"\0\0\0\0"

    def wire(self) -> bytes:
        first = (0x80 if self.fin else 0) | self.rsv << 4 | self.opcode
        size = len(self.payload)
        mask_bit = 0x80 if self.key is not None else 0
        if size < 126:
            head = bytes([first, mask_bit | size])
        elif size < 65536:
            head = bytes([first, mask_bit | 126]) + size.to_bytes(2, "big")
        else:
            head = bytes([first, mask_bit | 127]) + size.to_bytes(8, "big")
        if self.key is None:
            return head + self.payload
        return head + self.key + bytes(b ^ self.key[i % 4] for i, b in enumerate(self.payload))


@dataclasses.dataclass(frozen=True)
class Item:
    """What the client does at one point of the stream, in ``frames``.

    ``kind`` is ``message`` (``data`` is what the app receives; ``pings`` are the payloads of
    pings between its fragments), ``ping`` (``pings`` holds its payload), ``pong``, ``close``
    (``close_payload`` is its payload, echoed by the server) or ``bad`` (``code`` is the close
    code it must get; ``name`` says what it breaks)."""

    kind: str
    frames: tuple[Frame, ...]
    name: str = ""
    data: str | bytes | None = None
    pings: tuple[bytes, ...] = ()
    code: int | None = None
    close_payload: bytes = b""

    @property
    def terminal(self) -> bool:
        """Whether the server reads nothing after it."""
        return self.kind in ("close", "bad")

    def wire(self) -> bytes:
        return b"".join(frame.wire() for frame in self.frames)


@dataclasses.dataclass(frozen=True)
class Example:
    """Everything one WebSocket fuzz example does."""

    http_before: int
    offers_deflate: bool
    items: list[Item]
    damage: list[Damage]
    splits: list[int]
    pauses: list[float]
    finish: str  # "keep_open", "half_close" or "abort"
    transport: str  # "memory", "lockstep" or "socket"
    read_sizes: list[int]
    read_pauses: list[float]
    handler: str  # "echo", "slow" or "closes"
    handler_delay: float
    close_after: int
    settings: dict[str, Any]

    @property
    def deflate(self) -> bool:
        """Whether permessage-deflate is on (the client offered it and the server accepts)."""
        return self.offers_deflate and bool(self.settings["ws_per_message_deflate"])

    @property
    def handshake(self) -> bytes:
        return handshake(self.http_before, self.offers_deflate)

    @property
    def frames_start(self) -> int:
        return len(self.handshake)

    @property
    def original(self) -> bytes:
        return self.handshake + b"".join(item.wire() for item in self.items)

    @property
    def stream(self) -> bytes:
        """The bytes sent: the frames damaged (the handshake never is)."""
        head, frames = self.handshake, self.original[self.frames_start :]
        for damage in sorted(self.damage, key=lambda d: d.offset, reverse=True):
            frames = damage.apply(frames)
        return head + frames

    @property
    def pieces(self) -> list[tuple[int, bytes]]:
        data = self.stream
        bounds = [0, *sorted({s for s in self.splits if 0 < s < len(data)}), len(data)]
        return [(start, data[start:end]) for start, end in zip(bounds, bounds[1:])]

    @property
    def intact_until(self) -> int:
        """The offset (in the original stream) of the first damaged byte."""
        return self.frames_start + min((d.offset for d in self.damage), default=len(self.original))

    @property
    def spans(self) -> list[tuple[Item, int, int]]:
        spans, start = [], self.frames_start
        for item in self.items:
            end = start + len(item.wire())
            spans.append((item, start, end))
            start = end
        return spans

    @property
    def before_terminal(self) -> list[Item]:
        """The items that reach the server whole before the first close or bad item (or the
        first damaged byte)."""
        intact = []
        for item, _, end in self.spans:
            if item.terminal or end > self.intact_until:
                break
            intact.append(item)
        return intact

    @property
    def terminal(self) -> Item | None:
        """The first close or bad item, if it reaches the server whole and undamaged."""
        for item, _, end in self.spans:
            if item.terminal:
                return item if end <= self.intact_until else None
            if end > self.intact_until:
                return None
        return None

    @property
    def messages(self) -> list[str | bytes]:
        return [item.data for item in self.before_terminal if item.kind == "message" and item.data is not None]

    @property
    def pings(self) -> list[bytes]:
        return [payload for item in self.before_terminal for payload in item.pings]


def handshake(http_before: int, offers_deflate: bool) -> bytes:
    """``http_before`` plain requests, then the opening handshake."""
    lines = ["GET /ws HTTP/1.1", "Host: fuzz", "Upgrade: websocket", "Connection: Upgrade"]
    lines += [f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13"]
    if offers_deflate:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate")
    return GET * http_before + ("\r\n".join(lines) + "\r\n\r\n").encode()


# Strategies ------------------------------------------------------------------------------------


class Compressor:
    """The client's permessage-deflate context (context takeover, as the server's answer to a
    plain offer allows), shared by the messages in their order on the wire."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)

    def compress(self, data: bytes) -> bytes:
        return (self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH))[:-4]


KEYS = st.binary(min_size=4, max_size=4)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({cut for cut in cuts if 0 < cut < len(data)}), len(data)]
    return [data[start:end] for start, end in zip(bounds, bounds[1:])]


@st.composite
def message(draw: st.DrawFn, compressor: Compressor | None, max_size: int) -> Item:
    text = draw(st.booleans())
    data: str | bytes
    if text:
        data = draw(st.text(max_size=max_size // 4))
        payload = data.encode()
    else:
        data = payload = draw(st.binary(max_size=max_size))
    compress = compressor is not None and draw(st.booleans())
    wire = compressor.compress(payload) if compress and compressor is not None else payload
    parts = split(wire, draw(st.lists(st.integers(0, max(0, len(wire))), max_size=3)))
    frames: list[Frame] = []
    pings: list[bytes] = []
    for index, part in enumerate(parts):
        if index and draw(st.integers(0, 4)) == 0:
            ping = draw(st.binary(max_size=20))
            pings.append(ping)
            frames.append(Frame(PING, ping, key=draw(KEYS)))
        opcode = (TEXT if text else BINARY) if index == 0 else CONTINUATION
        rsv = RSV1 if compress and index == 0 else 0
        frames.append(Frame(opcode, part, fin=index == len(parts) - 1, rsv=rsv, key=draw(KEYS)))
    return Item("message", tuple(frames), data=data, pings=tuple(pings))


@st.composite
def close(draw: st.DrawFn) -> Item:
    if draw(st.integers(0, 4)) == 0:
        payload = b""
    else:
        code = draw(st.sampled_from(sorted(RECEIVABLE & set(range(1000, 1014))) + [3000, 3999, 4000, 4999]))
        reason = draw(st.text(max_size=30)).encode()[:123]
        payload = code.to_bytes(2, "big") + reason.decode(errors="ignore").encode()
    return Item("close", (Frame(CLOSE, payload, key=draw(KEYS)),), close_payload=payload)


BAD_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2000, 2999, 5000, 65535]


@st.composite
def bad(draw: st.DrawFn, compressor: Compressor | None, max_size: int) -> Item:
    """One item the server must refuse, and the close code it must refuse it with."""
    key = draw(KEYS)
    kinds: dict[str, tuple[list[Frame], int]] = {
        "unmasked frame": ([Frame(TEXT, b"x", key=None)], 1002),
        "RSV2": ([Frame(TEXT, b"x", rsv=0b010, key=key)], 1002),
        "RSV3 on a ping": ([Frame(PING, b"", rsv=0b001, key=key)], 1002),
        "reserved opcode": ([Frame(draw(st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15])), b"x", key=key)], 1002),
        "continuation without a start": ([Frame(CONTINUATION, b"x", key=key)], 1002),
        "ping of 126 bytes": ([Frame(PING, b"p" * 126, key=key)], 1002),
        "fragmented ping": ([Frame(PING, b"p", fin=False, key=key)], 1002),
        "fragmented close": ([Frame(CLOSE, b"\x03\xe8", fin=False, key=key)], 1002),
        "a new message inside a fragmented one": ([Frame(TEXT, b"a", fin=False, key=key), Frame(TEXT, b"b", key=key)], 1002),
        "invalid UTF-8": ([Frame(TEXT, draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"])), key=key)], 1007),
        "invalid UTF-8 in a later fragment": ([Frame(TEXT, b"ok ", fin=False, key=key), Frame(CONTINUATION, b"\xfe", key=key)], 1007),
        "message over ws_max_size": (
            [Frame(BINARY, part, fin=i == 1, key=key) if i == 0 else Frame(CONTINUATION, part, key=key)
             for i, part in enumerate(split(b"o" * (max_size + draw(st.integers(1, 40))), [max_size // 2]))],
            1009,
        ),
        "close with a one-byte payload": ([Frame(CLOSE, b"\x03", key=key)], 1002),
        "close with a code not to be sent": ([Frame(CLOSE, draw(st.sampled_from(BAD_CLOSE_CODES)).to_bytes(2, "big"), key=key)], 1002),
        "close reason not UTF-8": ([Frame(CLOSE, b"\x03\xe8\xff", key=key)], 1007),
    }  # fmt: skip
    if compressor is None:
        kinds["RSV1 without permessage-deflate"] = ([Frame(TEXT, b"x", rsv=RSV1, key=key)], 1002)
    else:
        kinds["corrupt deflate data"] = ([Frame(BINARY, b"\xff\xff\xff\xff", rsv=RSV1, key=key)], 1007)
        kinds["RSV1 on a continuation"] = (
            [Frame(TEXT, b"", fin=False, key=key), Frame(CONTINUATION, b"", rsv=RSV1, key=key)],
            1002,
        )
        kinds["compressed message inflating past ws_max_size"] = (
            [Frame(TEXT, compressor.compress(b"a" * (max_size + 1)), rsv=RSV1, key=key)],
            1009,
        )
    name = draw(st.sampled_from(sorted(kinds)))
    frames, code = kinds[name]
    return Item("bad", tuple(frames), name=name, code=code)


@st.composite
def items(draw: st.DrawFn, compressor: Compressor | None, max_size: int) -> list[Item]:
    """Ordinary items, then maybe a close or a bad item, then maybe items the server ignores."""
    drawn: list[Item] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["message", "message", "message", "ping", "pong"]))
        if kind == "message":
            drawn.append(draw(message(compressor, max_size)))
        else:
            payload = draw(st.binary(max_size=125))
            drawn.append(
                Item(
                    kind,
                    (Frame(PING if kind == "ping" else PONG, payload, key=draw(KEYS)),),
                    pings=(payload,) if kind == "ping" else (),
                )
            )
    ending = draw(st.sampled_from(["none", "close", "close", "bad", "bad", "bad"]))
    if ending == "close":
        drawn.append(draw(close()))
    elif ending == "bad":
        drawn.append(draw(bad(compressor, max_size)))
    if ending != "none" and draw(st.booleans()):
        drawn.append(draw(message(compressor, max_size)))
    return drawn


PAUSES = st.sampled_from([0.0] * 10 + [0.5, 3.0, 12.0, 40.0])
TIMEOUTS = st.sampled_from([1.0, 3.0, 10.0, 30.0])


@st.composite
def examples(draw: st.DrawFn) -> Example:
    offers_deflate = draw(st.booleans())
    settings = dict(
        ws_max_size=MAX_SIZE,
        ws_max_queue=draw(st.integers(1, 4)),
        ws_ping_interval=draw(st.sampled_from([None, None, 5.0, 30.0])),
        ws_ping_timeout=draw(st.sampled_from([None, 2.0, 10.0])),
        ws_per_message_deflate=draw(st.booleans()),
        ws_close_timeout=draw(TIMEOUTS),
        send_timeout=draw(TIMEOUTS),
        linger_timeout=draw(TIMEOUTS),
    )
    compressor = Compressor() if offers_deflate and settings["ws_per_message_deflate"] else None
    drawn = draw(items(compressor, MAX_SIZE))
    http_before = draw(st.integers(0, 2))
    head = len(handshake(http_before, offers_deflate))
    frames = sum(len(item.wire()) for item in drawn)
    splits = draw(st.lists(st.integers(0, head + frames + 16), max_size=20))
    return Example(
        http_before=http_before,
        offers_deflate=offers_deflate,
        items=drawn,
        damage=draw(st.just([]) | st.lists(damages(max(1, frames)), min_size=1, max_size=2)),
        splits=splits,
        pauses=draw(st.lists(PAUSES, min_size=len(splits) + 1, max_size=len(splits) + 1)),
        finish=draw(st.sampled_from(["keep_open", "keep_open", "half_close", "abort"])),
        transport=draw(st.sampled_from(["memory", "lockstep", "socket"])),
        read_sizes=draw(st.lists(st.sampled_from([1, 7, 100, 65536]), min_size=1, max_size=3)),
        read_pauses=draw(st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.3, 5.0]), min_size=1, max_size=3)),
        handler=draw(st.sampled_from(["echo", "echo", "slow", "closes"])),
        handler_delay=draw(st.sampled_from([0.1, 1.0, 8.0])),
        close_after=draw(st.integers(0, 3)),
        settings=settings,
    )
