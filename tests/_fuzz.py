"""The fuzz model shared by ``test_fuzz.py`` (native handlers) and ``test_fuzz_asgi.py`` (the
ASGI adapter): random request streams over memory streams under the MockClock.

Each example builds a stream of valid requests (GET/HEAD/POST, Content-Length or chunked
bodies, keep-alive or close, HTTP/1.0 and 1.1, ``Expect: 100-continue``, handlers that read
the body or not, slow handlers), may damage it (byte flips, insertions, deletions, a
truncation), splits it into reads at random places with random pauses between them, then
half-closes, keeps the connection open or aborts. A client reads the answer, slowly or not,
through a buffered stream or a lockstep one (no buffer: every write waits for the reader).

After each example these invariants are checked against a small model of the stream:

- every complete valid request before the first damaged byte (and before any pause long enough
  to trip a timeout) is answered exactly once, in order, with its own echo, unless the client
  aborted or read so slowly that ``send_timeout`` may have cut it off (then the answers it got
  are still the first ones, in order);
- a response with ``Connection: close`` is the last thing on the wire; a 4xx/5xx carries it,
  so a bad request gets exactly one error and then the connection ends;
- requests after one that closes the connection are never answered;
- the channel call returns within the time the client and handlers spent sleeping plus the
  longest configured timeout plus ``linger_timeout`` (MockClock arithmetic, no wall clock);
- every handler task ended, the channel counts no connection, and nothing was logged at
  warning level or above;
- what a handler took as a complete body is byte for byte a body the client sent, as h11 (an
  independent parser) reads the damaged stream, and a request whose body is malformed never
  gets a 2xx from a handler that reads the body before answering; every 2xx echo is the echo
  of the request h11 finds at its place.

``HTTPCHANNEL_FUZZ_PROFILE=long`` (``scripts/fuzz``) runs the long profile.

This module is the model and the strategies that draw it; ``_fuzz_run`` runs one example and
``_fuzz_checks`` holds the invariants.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st

LIMITS = dict(max_header_length=1024, max_request_line=256, max_header_count=16)


# The model -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Req:
    """One valid request of the generated stream, and what its echo must be."""

    method: str
    target: str
    version: str
    body: bytes
    chunked: bool
    keep_alive: bool
    expect_continue: bool
    chunk_size: int
    trailer: bool

    @property
    def reads_body(self) -> bool:
        return not self.target.startswith("/n")

    @property
    def echo(self) -> bytes:
        return self.target.encode() + b"\n" + (self.body if self.reads_body else b"")

    @property
    def may_close_early(self) -> bool:
        """An unread body the channel may not discard: whether it closes depends on timing."""
        return not self.reads_body and bool(self.body or self.chunked)

    def wire(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/{self.version}", "Host: fuzz"]
        if self.version == "1.1" and not self.keep_alive:
            lines.append("Connection: close")
        if self.version == "1.0" and self.keep_alive:
            lines.append("Connection: keep-alive")
        if self.expect_continue:
            lines.append("Expect: 100-continue")
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
        elif self.method == "POST":
            lines.append(f"Content-Length: {len(self.body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        return head + (self._chunked_body() if self.chunked else self.body)

    def _chunked_body(self) -> bytes:
        body, size = self.body, self.chunk_size
        parts = [b"%x;x=y\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
        return b"".join(parts) + b"0\r\n" + (b"X-Trailer: t\r\n" if self.trailer else b"") + b"\r\n"


@dataclasses.dataclass(frozen=True)
class Damage:
    """One edit of the stream at ``offset``: ``replace`` (one byte), ``insert``, ``delete``
    (``size`` bytes) or ``truncate``."""

    kind: str
    offset: int
    data: bytes = b""
    size: int = 0

    def apply(self, stream: bytes) -> bytes:
        at = self.offset
        if self.kind == "replace":
            return stream[:at] + self.data + stream[at + 1 :]
        if self.kind == "insert":
            return stream[:at] + self.data + stream[at:]
        if self.kind == "delete":
            return stream[:at] + stream[at + self.size :]
        return stream[:at]


@dataclasses.dataclass(frozen=True)
class Example:
    """Everything one fuzz example does."""

    requests: list[Req]
    damage: list[Damage]
    splits: list[int]
    pauses: list[float]
    finish: str  # "half_close", "keep_open" or "abort"
    lockstep: bool
    read_sizes: list[int]
    read_pauses: list[float]
    handler_delays: dict[str, float]
    settings: dict[str, Any]

    @property
    def original(self) -> bytes:
        return b"".join(request.wire() for request in self.requests)

    @property
    def stream(self) -> bytes:
        data = self.original
        for damage in sorted(self.damage, key=lambda d: d.offset, reverse=True):
            data = damage.apply(data)
        return data

    @property
    def pieces(self) -> list[tuple[int, bytes]]:
        """The damaged stream as (offset, bytes) reads."""
        data = self.stream
        bounds = [0, *sorted({s for s in self.splits if 0 < s < len(data)}), len(data)]
        return [(start, data[start:end]) for start, end in zip(bounds, bounds[1:])]

    @property
    def spans(self) -> list[tuple[int, int]]:
        spans, start = [], 0
        for request in self.requests:
            end = start + len(request.wire())
            spans.append((start, end))
            start = end
        return spans

    @property
    def cut(self) -> int:
        """The first offset from which the stream may not be answered as sent: the first
        damaged byte, or the start of a request a client pause may have timed out."""
        cut = min((d.offset for d in self.damage), default=len(self.original))
        return min(cut, self._timing_cut())

    def _timing_cut(self) -> int:
        settings = self.settings
        stall = min(settings["header_timeout"], settings["body_timeout"])
        pause_at = {start: pause for (start, _), pause in zip(self.pieces, self.pauses)}
        for start, end in self.spans:
            inside = sum(pause for offset, pause in pause_at.items() if start < offset < end)
            if inside >= stall or pause_at.get(start, 0) >= settings["timeout"]:
                return start
        return len(self.original)

    @property
    def prefix(self) -> list[Req]:
        """The requests that must be answered, in order."""
        answered = []
        for request, (_, end) in zip(self.requests, self.spans):
            if end > self.cut:
                break
            answered.append(request)
            if not request.keep_alive:
                break
        return answered

    @property
    def untouched(self) -> bool:
        """Whether the whole stream arrives as generated: then nothing but the prefix is answered."""
        return self.cut >= len(self.original)


# Strategies ------------------------------------------------------------------------------------

INTERESTING = [
    b"\x00",
    b"\r",
    b"\n",
    b" ",
    b"\t",
    b"\x0b",
    b"\x0c",
    b":",
    b",",
    b";",
    b"0",
    b"9",
    b"f",
    b"-",
    b"+",
    b"\x7f",
    b"\x80",
    b"\xff",
    b"\r\n",
    b"\r\n\r\n",
    b"\r\n ",
    b"\n\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: identity\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"Host: y\r\n",
    b" HTTP/1.1",
    b"HTTP/2.0",
    b"ffffffffffffffffff\r\n",
    b"a" * 300,
    b"x" * 1100,
    b"X: y\r\n" * 20,
    b"GET / HTTP/1.1\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
]


@st.composite
def requests(draw: st.DrawFn, index: int) -> Req:
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "POST"]))
    version = draw(st.sampled_from(["1.1", "1.1", "1.1", "1.0"]))
    has_body = method == "POST"
    chunked = has_body and version == "1.1" and draw(st.booleans())
    reads = draw(st.booleans()) if has_body else True
    query = draw(st.text("abz=&%", max_size=12))
    return Req(
        method=method,
        target=f"/{'r' if reads else 'n'}{index}" + (f"?{query}" if query else ""),
        version=version,
        body=draw(st.binary(max_size=200)) if has_body else b"",
        chunked=chunked,
        keep_alive=draw(st.sampled_from([True, True, True, False])),
        expect_continue=has_body and version == "1.1" and draw(st.booleans()),
        chunk_size=draw(st.sampled_from([1, 7, 64, 1000])),
        trailer=draw(st.booleans()),
    )


@st.composite
def damages(draw: st.DrawFn, length: int) -> Damage:
    kind = draw(st.sampled_from(["replace", "replace", "insert", "insert", "delete", "truncate"]))
    offset = draw(st.integers(0, max(0, length - 1)))
    if kind == "replace":
        return Damage(kind, offset, data=bytes([draw(st.integers(0, 255))]))
    if kind == "insert":
        return Damage(kind, offset, data=draw(st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=8)))
    return Damage(kind, offset, size=draw(st.integers(1, 8)))


PAUSES = st.sampled_from([0.0] * 12 + [0.5, 2.0, 6.0, 40.0])
TIMEOUTS = st.sampled_from([1.0, 3.0, 10.0, 30.0])


@st.composite
def examples(draw: st.DrawFn) -> Example:
    count = draw(st.integers(1, 6))
    reqs = [draw(requests(index)) for index in range(count)]
    length = sum(len(r.wire()) for r in reqs)
    splits = draw(st.lists(st.integers(0, length + 64), max_size=24))
    return Example(
        requests=reqs,
        damage=draw(st.just([]) | st.lists(damages(length), min_size=1, max_size=3)),
        splits=splits,
        pauses=draw(st.lists(PAUSES, min_size=len(splits) + 1, max_size=len(splits) + 1)),
        finish=draw(st.sampled_from(["half_close", "half_close", "keep_open", "abort"])),
        lockstep=draw(st.booleans()),
        read_sizes=draw(st.lists(st.sampled_from([1, 5, 100, 65536]), min_size=1, max_size=4)),
        read_pauses=draw(st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.3, 5.0]), min_size=1, max_size=4)),
        handler_delays={r.target: draw(st.sampled_from([0.0, 0.0, 0.1, 1.0, 8.0])) for r in reqs},
        settings=dict(
            LIMITS,
            max_pipeline=draw(st.integers(1, 4)),
            timeout=draw(TIMEOUTS),
            header_timeout=draw(TIMEOUTS),
            body_timeout=draw(TIMEOUTS),
            send_timeout=draw(TIMEOUTS),
            linger_timeout=draw(TIMEOUTS),
            max_body_size=draw(st.sampled_from([None, 256])),
            max_discard=draw(st.sampled_from([0, 16, 65536])),
        ),
    )
