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
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import h11
import trio
import trio.testing
from hypothesis import event
from hypothesis import strategies as st

from _http_check import ResponseCheck, SentRequests
from trio_httpchannel import HTTPChannel, Request, Response

HANG_BOUND = 1_000_000.0
"""MockClock seconds after which an example counts as hung (autojump gets there at once)."""

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
    b"\x00", b"\r", b"\n", b" ", b"\t", b"\x0b", b"\x0c", b":", b",", b";", b"0", b"9", b"f",
    b"-", b"+", b"\x7f", b"\x80", b"\xff", b"\r\n", b"\r\n\r\n", b"\r\n ", b"\n\n",
    b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: identity\r\n", b"Content-Length: 5\r\n",
    b"Content-Length: 99999999999999999999\r\n", b"Connection: close\r\n", b"Expect: 100-continue\r\n",
    b"Host: y\r\n", b" HTTP/1.1", b"HTTP/2.0", b"ffffffffffffffffff\r\n", b"a" * 300, b"x" * 1100,
    b"X: y\r\n" * 20, b"GET / HTTP/1.1\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
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


# Running one example ---------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """What happened: bytes the client read, the channel's span, sleeps, handler tasks, logs,
    and the bodies the handlers took as complete (target, body)."""

    received: bytearray = dataclasses.field(default_factory=bytearray)
    complete_bodies: list[tuple[str, bytes]] = dataclasses.field(default_factory=list)
    slept: float = 0.0
    read_slept: float = 0.0
    served_from: float = 0.0
    served_until: float | None = None
    handlers_started: int = 0
    handlers_ended: int = 0
    warnings: list[logging.LogRecord] = dataclasses.field(default_factory=list)
    connections_left: int = -1

    async def sleep(self, seconds: float) -> None:
        self.slept += seconds
        await trio.sleep(seconds)


def echo_handler(example: Example, run: Run) -> Callable[[Request], Any]:
    """Echo ``target\\n`` and the body (unless the path starts with ``/n``), after a delay."""

    async def echo(request: Request) -> Response:
        run.handlers_started += 1
        try:
            await run.sleep(example.handler_delays.get(request.target, 0.0))
            body = b""
            if not request.path.startswith("/n"):
                body = await request.read()
                run.complete_bodies.append((request.target, body))
            return Response(200, [("x-method", request.method)], request.target.encode() + b"\n" + body)
        finally:
            run.handlers_ended += 1

    return echo


async def serve_one(channel: HTTPChannel, stream: trio.abc.Stream, run: Run) -> None:
    run.served_from = trio.current_time()
    await channel(stream)
    run.served_until = trio.current_time()
    run.connections_left = channel.connection_count


async def send_pieces(stream: trio.abc.HalfCloseableStream, example: Example, run: Run) -> None:
    try:
        for (_, piece), pause in zip(example.pieces, example.pauses):
            await run.sleep(pause)
            await stream.send_all(piece)
        if example.finish == "half_close":
            await stream.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    if example.finish == "abort":
        await stream.aclose()


async def read_all(stream: trio.abc.Stream, example: Example, run: Run) -> None:
    reads = 0
    try:
        while True:
            pause = example.read_pauses[reads % len(example.read_pauses)]
            run.read_slept += pause
            await run.sleep(pause)
            data = await stream.receive_some(example.read_sizes[reads % len(example.read_sizes)])
            reads += 1
            if not data:
                break
            run.received += data
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    await stream.aclose()


class _Collect(logging.Handler):
    def __init__(self, run: Run) -> None:
        super().__init__(logging.WARNING)
        self.run = run

    def emit(self, record: logging.LogRecord) -> None:
        self.run.warnings.append(record)


HandlerFactory = Callable[[Example, "Run"], Any]
"""Makes the handler of one example (``echo_handler`` or an ASGI app's ``ASGIHandler``)."""


async def exercise(example: Example, make_handler: HandlerFactory = echo_handler) -> Run:
    run = Run()
    pair = trio.testing.lockstep_stream_pair if example.lockstep else trio.testing.memory_stream_pair
    client, server = pair()
    channel = HTTPChannel(make_handler(example, run), **example.settings)
    collector = _Collect(run)
    logger = logging.getLogger("trio_httpchannel")
    logger.addHandler(collector)
    try:
        with trio.fail_after(HANG_BOUND):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve_one, channel, server, run)
                nursery.start_soon(read_all, client, example, run)
                await send_pieces(client, example, run)
    finally:
        logger.removeHandler(collector)
    return run


# Reading the answer back -----------------------------------------------------------------------


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def closes(self) -> bool:
        return b"close" in self.headers.get(b"connection", b"").lower()


def parse_answers(data: bytes, *, partial: bool, methods: list[str]) -> list[Answer]:
    """The final responses in ``data`` (interim 1xx skipped), the k-th answering a request of
    method ``methods[k]`` when known (a response to HEAD has no body, an error response
    included). Unless ``partial``, ``data`` must be whole responses and nothing else."""
    answers: list[Answer] = []
    rest = bytes(data)
    while rest:
        head_request = len(answers) < len(methods) and methods[len(answers)] == "HEAD"
        parsed = _parse_one(rest, head_request)
        if parsed is None:
            assert partial, f"incomplete or malformed response bytes: {rest[:300]!r}"
            break
        answer, rest = parsed
        if answer.status >= 200:
            answers.append(answer)
    return answers


def _parse_one(data: bytes, head_request: bool) -> tuple[Answer, bytes] | None:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    version, status, _ = lines[0].split(b" ", 2)
    assert version == b"HTTP/1.1", lines[0]
    fields = (line.split(b": ", 1) for line in lines[1:])
    headers = {name.lower(): value for name, value in fields}
    rest = data[end + 4 :]
    code = int(status)
    length = int(headers.get(b"content-length", b"-1"))
    if head_request and code >= 400 and len(rest) == length:
        head_request = False  # refused before its head was parsed: the server could not tell
    if code < 200 or code in (204, 304) or head_request or headers.get(b"x-method") == b"HEAD":
        return Answer(code, headers, b""), rest
    if length >= 0:
        return (Answer(code, headers, rest[:length]), rest[length:]) if len(rest) >= length else None
    assert headers.get(b"transfer-encoding") != b"chunked", "echo bodies have a known length"
    return Answer(code, headers, rest), b""


# The invariants --------------------------------------------------------------------------------


def cut_off(example: Example, run: Run) -> bool:
    """Whether the client may have lost answers it was owed: it aborted, or it read through a
    lockstep stream (where a write waits for the reader) slowly enough for send_timeout."""
    slow = example.lockstep and run.read_slept >= example.settings["send_timeout"]
    return example.finish == "abort" or slow


def check_prefix(example: Example, answers: list[Answer], partial: bool) -> None:
    """The requests before the cut are answered first, in order, each with its own echo."""
    prefix = example.prefix
    for position, (request, answer) in enumerate(zip(prefix, answers)):
        assert answer.status == 200, (position, answer)
        assert answer.headers[b"x-method"] == request.method.encode()
        assert answer.closes or request.keep_alive, (position, answer)
        if request.method != "HEAD":
            assert answer.body == request.echo, (position, answer.body, request.echo)
    if partial:
        return
    if len(answers) < len(prefix):
        last = len(answers) - 1
        assert answers and answers[-1].closes, f"{len(prefix)} requests, {len(answers)} answers"
        assert prefix[last].may_close_early, f"request {last} closed the connection early"


def check_ends(example: Example, answers: list[Answer], partial: bool) -> None:
    """Close is final; an error response closes; after a closing request, nothing; and an
    untouched stream gets exactly its answers."""
    for position, answer in enumerate(answers):
        if answer.status >= 400:
            assert answer.closes, answer
        if answer.closes:
            assert position == len(answers) - 1, f"answer {position} closes but {len(answers)} were sent"
    prefix = example.prefix
    if partial:
        return
    if example.untouched or (prefix and not prefix[-1].keep_alive):
        assert len(answers) <= len(prefix), f"{len(answers)} answers to {len(prefix)} requests"


def check_run(example: Example, run: Run) -> None:
    """The channel ended in bounded MockClock time, with no task and no warning left."""
    settings = example.settings
    timeouts = ("timeout", "header_timeout", "body_timeout", "send_timeout")
    bound = run.slept + max(settings[name] for name in timeouts)
    bound += settings["linger_timeout"] + 0.001
    assert run.served_until is not None
    assert run.served_until - run.served_from <= bound, (run.served_until - run.served_from, bound)
    assert run.handlers_started == run.handlers_ended
    assert run.connections_left == 0
    assert not run.warnings, [record.getMessage() for record in run.warnings]


@dataclasses.dataclass(frozen=True)
class Sent:
    """One request of the (damaged) stream as h11, an independent parser, reads it: its body
    is ``None`` when it is malformed or never ends."""

    method: str
    target: str
    body: bytes | None


def parse_requests(data: bytes) -> list[Sent]:
    """The requests h11 finds in ``data``, in order, until one it cannot read whole. A fresh
    ``h11.Connection`` per request (so that no response is needed to go on), and the empty
    lines before a request line skipped, as RFC 9112 section 2.2 lets a server do."""
    sent: list[Sent] = []
    while data:
        data = data.lstrip(b"\r\n")
        connection = h11.Connection(h11.SERVER)
        connection.receive_data(data)
        try:
            request = connection.next_event()
        except h11.RemoteProtocolError:
            break
        if not isinstance(request, h11.Request):
            break
        body: bytes | None = b""
        try:
            while not isinstance(event := connection.next_event(), h11.EndOfMessage):
                if not isinstance(event, h11.Data):
                    body = None
                    break
                body += event.data
        except h11.RemoteProtocolError:
            body = None
        sent.append(Sent(request.method.decode(), request.target.decode(), body))
        if body is None:
            break
        data = connection.trailing_data[0]
    return sent


def check_bodies(sent: list[Sent], run: Run, answers: list[Answer]) -> None:
    """What a handler took as a complete body is byte for byte a body the client sent (``sent``,
    as h11 reads the stream), and a request whose body is malformed never gets a 2xx from a
    handler that reads it first."""
    whole = collections.Counter((bare(request.target), request.body) for request in sent if request.body is not None)
    taken = collections.Counter((bare(target), body) for target, body in run.complete_bodies)
    assert not taken - whole, (taken - whole, sent)
    for position, answer in enumerate(answers):
        if answer.status >= 300 or answer.headers.get(b"x-method") == b"HEAD":
            continue
        assert position < len(sent), f"answer {position} is a {answer.status} to a request h11 cannot read"
        if sent[position].method == "HEAD":
            continue
        request = sent[position]
        if request.target.startswith("/n"):
            continue
        assert request.body is not None, f"answer {position} is a {answer.status} to a malformed body"
        echo = answer.body.partition(b"\n")
        assert (bare(echo[0].decode()), echo[2]) == (bare(request.target), request.body), (position, answer, request)


def bare(target: str) -> str:
    """``target`` without an empty query (``/a?`` is ``/a``): an ASGI scope cannot tell them
    apart (its ``query_string`` is empty for both)."""
    path, _, query = target.partition("?")
    return f"{path}?{query}" if query else path


def check_http(example: Example, run: Run) -> None:
    """Every answer to a stream that arrives as generated is valid HTTP/1.1 as h11 reads it, as
    the raw client checks the answers of the other wire tests. A damaged or stalled stream is
    left out: whether the server read a HEAD there, or timed out before its head was whole and
    answered as to a GET, depends on where the damage or the timer fell."""
    if not example.untouched:
        return
    sent = SentRequests()
    sent.write(example.stream)
    answers = ResponseCheck(sent)
    answers.read(bytes(run.received))
    answers.read_eof()


def check(example: Example, run: Run) -> None:
    partial = cut_off(example, run)
    sent = parse_requests(example.stream)
    answers = parse_answers(run.received, partial=partial, methods=[request.method for request in sent])
    event(f"finish: {example.finish}, {'untouched' if example.untouched else 'damaged or stalled'}")
    event(f"client cut off: {partial}")
    event(f"requests that must be answered: {min(len(example.prefix), 3)}{'+' if len(example.prefix) >= 3 else ''}")
    event(f"last status: {answers[-1].status if answers else None}")
    check_run(example, run)
    check_http(example, run)
    check_prefix(example, answers, partial)
    check_ends(example, answers, partial)
    check_bodies(sent, run, answers)
