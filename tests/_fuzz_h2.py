"""The HTTP/2 fuzz model (``test_fuzz_http2.py``): random client frame sequences over memory
streams under the MockClock, served by ``HTTPChannel`` from its first byte (the preface).

Each example is a script of client actions, turned into bytes by h2's client side (which keeps
them valid: stream ids, windows, HPACK): requests on new streams (GET or POST, bodies in random
DATA frames, ended or left open), WebSockets by extended CONNECT (RFC 8441: messages made by
wsproto's client, a close frame or not, the stream ended or not), more body, client resets,
PING, SETTINGS, WINDOW_UPDATE, PRIORITY; and frames h2 would refuse to send, written with hyperframe (bad frames of every
kind of h2spec's categories, floods, a Rapid Reset burst, malformed requests, a request split
over CONTINUATION). The bytes may be damaged (flips, insertions, deletions, a truncation), are
split into reads at random places with random pauses, then the client half-closes, keeps the
connection open, or aborts. It reads what the server sends, slowly or not.

After each example:

- the channel returned within the time the client and handlers slept plus every configured
  timeout (MockClock arithmetic: no hang); every handler task ended, the channel counts no
  connection, nothing was logged at warning level or above (no crash, no traceback);
- what the server sent parses as HTTP/2 frames, its header blocks decode, it starts with
  SETTINGS, and no stream gets HEADERS or DATA after its END_STREAM or RST_STREAM;
- when the client kept the connection open to the end, every stream it opened was answered
  (END_STREAM), reset (RST_STREAM), refused by a GOAWAY below it, or ended by a connection
  error (GOAWAY with an error code);
- a stream sent whole before anything bad, and answered 200, got exactly its echo; and what a
  handler took as a complete body is byte for byte the DATA of a stream the client ended, as
  hyperframe and hpack (read independently of h2) find them in the damaged stream.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterator
from typing import Any

import hpack
import trio
import trio.testing
from _fuzz import PAUSES, TIMEOUTS, Damage, damages
from _fuzz_run import HANG_BOUND, Run, _Collect, echo_handler, read_all, send_pieces, serve_one
from _h2_script import BAD, GOOD_RAW, Action, Builder, Control, More, Open, Raw, Reset, Script, WebSocket
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
)
from hypothesis import event
from hypothesis import strategies as st

from trio_httpchannel import HTTPChannel
from trio_httpchannel.websocket import WebSocketRequest

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Strategies ------------------------------------------------------------------------------------


SIZES = st.sampled_from([0, 1, 100, 1000, 16384, 40000])
OPENS = st.builds(
    Open,
    method=st.sampled_from(["GET", "POST", "POST"]),
    reads=st.booleans(),
    chunks=st.lists(SIZES, max_size=3).map(tuple),
    end=st.sampled_from([True, True, True, False]),
)
WEBSOCKETS = st.builds(
    WebSocket,
    messages=st.lists(st.sampled_from([0, 1, 125, 126, 1000, 70000]), max_size=3).map(tuple),
    close=st.booleans(),
    end=st.booleans(),
)


def actions(bad: bool) -> st.SearchStrategy[Action]:
    """Client actions; frames h2 would not send only if ``bad`` (half of the examples)."""
    sizes, opens = SIZES, OPENS
    good = [
        opens,
        opens,
        opens,
        WEBSOCKETS,
        st.builds(More, which=st.integers(0, 7), size=sizes, end=st.booleans()),
        st.builds(Reset, which=st.integers(0, 7)),
        st.builds(
            Control, kind=st.sampled_from(["ping", "settings", "window", "priority"]), value=st.integers(0, 70000)
        ),
    ]
    raw = st.builds(Raw, name=st.sampled_from(sorted(BAD)))
    return st.one_of(*good, raw) if bad else st.one_of(*good, st.builds(Raw, name=st.sampled_from(sorted(GOOD_RAW))))


@dataclasses.dataclass(frozen=True)
class H2Example:
    """Everything one HTTP/2 fuzz example does (the attributes ``_fuzz``'s client helpers use
    have their names there)."""

    actions: list[Action]
    initial_window: int | None
    damage: list[Damage]
    splits: list[int]
    pauses: list[float]
    finish: str
    read_sizes: list[int]
    read_pauses: list[float]
    settings: dict[str, Any]

    @functools.cached_property
    def script(self) -> Script:
        return Builder(self.initial_window).play(self.actions)

    @property
    def handler_delays(self) -> dict[str, float]:
        return {f"/{kind}{index}": (index % 3) * 0.5 for index in range(len(self.actions)) for kind in "rn"}

    @functools.cached_property
    def stream(self) -> bytes:
        data = self.script.data
        for damage in sorted(self.damage, key=lambda d: d.offset, reverse=True):
            data = damage.apply(data)
        return data

    @property
    def pieces(self) -> list[tuple[int, bytes]]:
        data = self.stream
        bounds = [0, *sorted({s for s in self.splits if 0 < s < len(data)}), len(data)]
        return [(start, data[start:end]) for start, end in zip(bounds, bounds[1:])]

    @property
    def cut(self) -> int:
        """Where the first bad frame or damaged byte is: the echoes are checked before it."""
        script = self.script
        return min([script.bad_from, *(d.offset for d in self.damage)])

    @property
    def timing_cut(self) -> int:
        """Where the first read starts once the client has paused, in all, long enough for a
        timer (the idle one runs across pauses between streams, as the preface's does): streams
        sent whole before it must be answered."""
        stall = min(self.settings[name] for name in ("timeout", "header_timeout", "body_timeout", "send_timeout"))
        paused = 0.0
        for (start, _), pause in zip(self.pieces, self.pauses):
            paused += pause
            if paused >= stall:
                return start
        return len(self.stream)


@st.composite
def h2_examples(draw: st.DrawFn) -> H2Example:
    script_actions = [draw(OPENS), *draw(st.lists(actions(draw(st.booleans())), max_size=9))]
    initial_window = draw(st.sampled_from([None, None, 10, 65535, 1_000_000]))
    length = len(Builder(initial_window).play(script_actions).data)
    splits = draw(st.lists(st.integers(0, length + 64), max_size=16))
    return H2Example(
        actions=script_actions,
        initial_window=initial_window,
        damage=draw(st.just([]) | st.just([]) | st.lists(damages(length), min_size=1, max_size=2)),
        splits=splits,
        pauses=draw(st.lists(PAUSES, min_size=len(splits) + 1, max_size=len(splits) + 1)),
        finish=draw(st.sampled_from(["keep_open", "keep_open", "keep_open", "half_close", "abort"])),
        read_sizes=draw(st.lists(st.sampled_from([1, 9, 100, 65536]), min_size=1, max_size=3)),
        read_pauses=draw(st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.3, 5.0]), min_size=1, max_size=3)),
        settings=dict(
            max_header_length=1024,
            max_request_line=256,
            max_header_count=16,
            timeout=draw(TIMEOUTS),
            header_timeout=draw(TIMEOUTS),
            body_timeout=draw(TIMEOUTS),
            send_timeout=draw(TIMEOUTS),
            linger_timeout=draw(TIMEOUTS),
            max_body_size=draw(st.sampled_from([None, 256])),
            h2_max_concurrent_streams=draw(st.sampled_from([1, 2, 100])),
            h2_initial_window_size=draw(st.sampled_from([65535, 70000])),
            h2_max_resets_per_second=draw(st.sampled_from([3, 100])),
            h2_max_control_frames_per_second=draw(st.sampled_from([10, 1000])),
            ws_max_size=draw(st.sampled_from([100, 1 << 20])),
            ws_ping_interval=draw(TIMEOUTS),
            ws_ping_timeout=draw(TIMEOUTS),
            ws_close_timeout=draw(TIMEOUTS),
        ),
    )


# Running one example ---------------------------------------------------------------------------


async def exercise_h2(example: H2Example) -> Run:
    run = Run()
    client, server = trio.testing.memory_stream_pair()
    channel = HTTPChannel(
        echo_handler(example, run),  # type: ignore[arg-type]
        websocket_handler=websocket_echo(run),
        **example.settings,
    )
    collector = _Collect(run)
    logger = logging.getLogger("trio_httpchannel")
    logger.addHandler(collector)
    try:
        with trio.fail_after(HANG_BOUND):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve_one, channel, server, run)
                nursery.start_soon(read_all, client, example, run, run.sleep)
                await send_pieces(client, example, run)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(collector)
    return run


def websocket_echo(run: Run) -> Any:
    """Accepts every WebSocket and echoes its messages; counted with the handlers."""

    async def echo(request: WebSocketRequest) -> None:
        run.handlers_started += 1
        try:
            ws = await request.accept()
            async for message in ws:
                await ws.send(message)
        finally:
            run.handlers_ended += 1

    return echo


# Reading the frames back -----------------------------------------------------------------------


@dataclasses.dataclass
class Answer:
    """What the server sent on one stream."""

    status: int | None = None
    body: bytes = b""
    ended: bool = False
    reset: int | None = None


@dataclasses.dataclass
class Wire:
    """The server's frames, read back: per stream, and its GOAWAYs."""

    answers: dict[int, Answer]
    goaways: list[GoAwayFrame]


def frames(data: bytes, *, partial: bool) -> Iterator[Frame]:
    """The frames in ``data``, in order, until one hyperframe cannot read (which raises);
    unless ``partial``, nothing may be left over."""
    view = memoryview(data)
    while len(view) >= 9:
        head, length = Frame.parse_frame_header(view[:9])
        if len(view) < 9 + length:
            break
        head.parse_body(view[9 : 9 + length])
        yield head
        view = view[9 + length :]
    assert partial or not view, f"{len(view)} bytes of an unfinished frame at the end"


def read_wire(data: bytes, *, partial: bool) -> Wire:
    """The server's frames as answers; every rule they must keep is asserted on the way."""
    decoder = hpack.Decoder()
    decoder.max_allowed_table_size = 2**32 - 1  # a damaged SETTINGS may have allowed any size
    answers: dict[int, Answer] = {}
    goaways: list[GoAwayFrame] = []
    pending = b""
    for position, found in enumerate(frames(data, partial=partial)):
        assert position or isinstance(found, SettingsFrame), f"the server began with {found}"
        assert not isinstance(found, PushPromiseFrame)
        if isinstance(found, GoAwayFrame):
            goaways.append(found)
            continue
        if not isinstance(found, (HeadersFrame, ContinuationFrame, DataFrame, RstStreamFrame)):
            continue
        answer = answers.setdefault(found.stream_id, Answer())
        assert found.stream_id % 2 == 1, f"a frame on the even stream {found.stream_id}"
        if isinstance(found, RstStreamFrame):
            # After a complete response, RST_STREAM (NO_ERROR) stops a body still coming (RFC 9113 8.1);
            # h2 answers each frame a client sends on a stream that is closed (a lower idle one
            # the client skipped, or one whose response is complete: even a CONTINUATION with no
            # HEADERS before it, which RFC 9113 6.10 makes a connection error) with STREAM_CLOSED,
            # as often as it comes. Neither cuts a response: that would be a reset before the end.
            again = answer.reset is not None
            assert not again or found.error_code == 5, f"stream {found.stream_id} reset twice"
            assert not answer.ended or found.error_code in (0, 5), (
                f"stream {found.stream_id} reset with the error {found.error_code} after its end"
            )
            answer.reset = found.error_code
            continue
        assert not answer.ended and answer.reset is None, f"{found} after the end of its stream"
        if isinstance(found, DataFrame):
            assert answer.status is not None, f"DATA before HEADERS on stream {found.stream_id}"
            answer.body += found.data
        else:
            pending += found.data
            if "END_HEADERS" not in found.flags:
                continue
            fields = dict(decoder.decode(pending, raw=True))
            pending = b""
            answer.status = int(fields[b":status"])
        answer.ended = "END_STREAM" in found.flags
    return Wire(answers, goaways)


def client_bodies(data: bytes) -> dict[int, tuple[str, bytes | None]]:
    """Per stream, its ``:path`` and body (``None`` unless the client ended it), as hyperframe
    and hpack read the client's (damaged) bytes, up to the first thing they cannot read."""
    found: dict[int, tuple[str, bytes | None]] = {}
    if not data.startswith(PREFACE):
        return found
    decoder = hpack.Decoder()
    bodies: dict[int, bytes] = {}
    pending = b""
    ends = False
    block: int | None = None  # the stream whose header block is open
    try:
        for item in frames(data[len(PREFACE) :], partial=True):
            if (block is not None) != isinstance(item, ContinuationFrame) or block not in (None, item.stream_id):
                break  # a header block interrupted, or a CONTINUATION without one: a connection error
            if isinstance(item, HeadersFrame):
                if item.stream_id in found:
                    break  # a stream id used again (damage): a connection error, nothing more is served
                pending, ends, block = item.data, "END_STREAM" in item.flags, item.stream_id
            elif isinstance(item, ContinuationFrame):
                pending += item.data
            elif isinstance(item, DataFrame) and item.stream_id in bodies:
                bodies[item.stream_id] += item.data
                ends = "END_STREAM" in item.flags
            else:
                continue
            if isinstance(item, (HeadersFrame, ContinuationFrame)):
                if "END_HEADERS" not in item.flags:
                    continue
                block = None
                fields = dict(decoder.decode(pending, raw=True))
                found[item.stream_id] = (fields.get(b":path", b"").decode("latin-1"), None)
                bodies[item.stream_id] = b""
            if ends:
                found[item.stream_id] = (found[item.stream_id][0], bodies[item.stream_id])
    except (HyperframeError, hpack.HPACKError, ValueError, KeyError, UnicodeDecodeError):
        pass
    return found


# The invariants --------------------------------------------------------------------------------


def check_run_h2(example: H2Example, run: Run) -> None:
    """No hang (the channel returned within the sleeps and every timeout), no task, no log."""
    settings = example.settings
    timeouts = ("timeout", "header_timeout", "body_timeout", "send_timeout", "linger_timeout")
    timeouts += ("ws_ping_interval", "ws_ping_timeout", "ws_close_timeout")
    bound = run.slept + sum(settings[name] for name in timeouts) + 0.001
    assert run.served_until is not None
    assert run.served_until - run.served_from <= bound, (run.served_until - run.served_from, bound)
    assert run.handlers_started == run.handlers_ended
    assert run.connections_left == 0
    assert not run.warnings, [record.getMessage() for record in run.warnings]


def check_streams(example: H2Example, script: Script, wire: Wire) -> None:
    """Every stream the client opened and kept open to the end was answered, reset, refused by
    a GOAWAY below it, or ended by a connection error; the clean ones answered 200 echo."""
    error = any(goaway.error_code != 0 for goaway in wire.goaways)
    last = min((goaway.last_stream_id for goaway in wire.goaways), default=None)
    cut = example.cut
    owed = min(cut, example.timing_cut)
    if Raw("goaway") in example.actions:
        # A client's GOAWAY ends the connection at once, its streams in flight dropped: h2
        # closes its state machine on receiving one (RFC 9113 section 6.8 would let them end).
        owed = 0
    for sent in script.streams:
        answer = wire.answers.get(sent.stream_id, Answer())
        clean = sent.last <= cut and sent.ended and not sent.reset
        if example.finish == "keep_open" and sent.last <= owed and not sent.reset:
            refused = last is not None and sent.stream_id > last
            assert answer.ended or answer.reset is not None or refused or error, (sent, answer, wire.goaways)
        if clean and answer.ended and answer.status == 200 and sent.method not in ("HEAD", "CONNECT"):
            echo = sent.target.encode() + b"\n" + (sent.body if sent.target.startswith("/r") else b"")
            assert answer.body == echo, (sent, answer)


def check_bodies_h2(example: H2Example, run: Run) -> None:
    """What a handler took as a complete body is what the client sent on a stream it ended."""
    sent = client_bodies(example.stream)
    for target, body in run.complete_bodies:
        candidates = [whole for path, whole in sent.values() if path == target]
        assert body in candidates, (target, len(body), [None if c is None else len(c) for c in candidates])


def check_h2(example: H2Example, run: Run) -> None:
    script = example.script
    received = bytes(run.received)
    event(f"finish: {example.finish}")
    event(f"damaged: {bool(example.damage)}, bad frames: {script.bad_from < len(script.data)}")
    check_run_h2(example, run)
    check_bodies_h2(example, run)
    if example.cut < len(PREFACE) or received.startswith(b"HTTP/1.1 "):
        event("the preface was damaged: answered as HTTP/1.1, or closed")
        return
    wire = read_wire(received, partial=example.finish == "abort")
    event(
        f"streams answered: {sum(a.ended for a in wire.answers.values())}, reset: {sum(a.reset is not None for a in wire.answers.values())}"
    )
    event(f"GOAWAY: {[g.error_code for g in wire.goaways]}")
    websockets = [wire.answers.get(sent.stream_id, Answer()) for sent in script.streams if sent.method == "CONNECT"]
    event(f"WebSockets accepted: {sum(answer.status == 200 for answer in websockets)} of {len(websockets)}")
    check_streams(example, script, wire)
