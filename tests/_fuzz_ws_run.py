"""Running one example of the WebSocket fuzz model (``_fuzz_ws.py``) and checking it.

Invariants after each example:

- no hang: the channel call returns within the time the client and the handler slept plus the
  configured timeouts (MockClock arithmetic), and every handler task ended;
- no crash: nothing logged at warning level or above (no traceback);
- what the server wrote is plain HTTP answers, the ``101``, then well-formed server frames
  (unmasked, no reserved bits but permessage-deflate's, control frames whole and short), at most
  one close frame, and nothing after it (only a client that aborted or read too slowly for
  ``send_timeout`` may see a frame cut short);
- the messages echoed are, in order, the client's messages before its first bad item or close
  (a prefix of them: a close is answered at once and overtakes echoes still to come), and the
  pongs answer its pings in order;
- the right close code: for bad input its code (1002, 1007 or 1009), for the client's close
  its own code and reason echoed; else only what the server may close with on its own (1011
  when the keepalive went unanswered, 4000 from the closing handler). When the first bad item
  or close reached the server whole and the client neither aborted nor stopped reading, the
  close frame is there.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from collections.abc import Callable
from typing import Any

import trio
import trio.testing
from _fuzz_run import _Collect, read_all
from _fuzz_ws import (
    BINARY,
    CLOSE,
    CLOSING_HANDLER_CODE,
    CONTINUATION,
    HANG_BOUND,
    PING,
    PONG,
    QUIET,
    RSV1,
    SENDABLE,
    TEXT,
    Example,
)
from hypothesis import event

from trio_httpchannel import HTTPChannel, Response
from trio_httpchannel.websocket import WebSocketRequest

# Running one example ---------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """What happened: the bytes the client read, the channel's span, everyone's sleeps, the
    handler tasks and the log records at warning level and above."""

    received: bytearray = dataclasses.field(default_factory=bytearray)
    slept: float = 0.0
    read_slept: float = 0.0
    handler_slept: float = 0.0
    served_from: float = 0.0
    served_until: float | None = None
    handlers_started: int = 0
    handlers_ended: int = 0
    warnings: list[logging.LogRecord] = dataclasses.field(default_factory=list)
    connections_left: int = -1
    served: trio.Event = dataclasses.field(default_factory=trio.Event)
    gave_up: bool = False


async def plain(request: Any) -> Response:
    return Response(200, [], b"ok")


def websocket_handler(example: Example, run: Run) -> Callable[[WebSocketRequest], Any]:
    """Echo every message, after ``handler_delay`` each for the slow handler; the closing
    handler closes with 4000 after ``close_after`` messages."""

    async def handle(request: WebSocketRequest) -> None:
        run.handlers_started += 1
        try:
            ws = await request.accept()
            echoed = 0
            while True:
                if example.handler == "closes" and echoed == example.close_after:
                    await ws.close(CLOSING_HANDLER_CODE, "enough")
                    return
                if example.handler == "slow":
                    run.handler_slept += example.handler_delay
                    await trio.sleep(example.handler_delay)
                try:
                    message = await ws.receive()
                except OSError:
                    return
                await ws.send(message)
                echoed += 1
        finally:
            run.handlers_ended += 1

    return handle


async def serve_one(channel: HTTPChannel, stream: trio.abc.Stream, run: Run) -> None:
    run.served_from = trio.current_time()
    await channel(stream)
    run.served_until = trio.current_time()
    run.connections_left = channel.connection_count
    run.served.set()


async def send_pieces(stream: trio.abc.HalfCloseableStream, example: Example, run: Run) -> None:
    """Send the pieces (no pause inside the handshake: that would be an HTTP timeout, the HTTP
    fuzz's business), then finish as the example says."""
    try:
        for (start, piece), pause in zip(example.pieces, example.pauses):
            if start >= example.frames_start:
                run.slept += pause
                await trio.sleep(pause)
            await stream.send_all(piece)
        if example.finish == "half_close":
            await stream.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    if example.finish == "keep_open":
        with trio.move_on_after(QUIET) as waiting:
            await run.served.wait()
        run.gave_up = waiting.cancelled_caught
    if example.finish == "abort" or run.gave_up:
        await stream.aclose()


def stream_pair(transport: str) -> tuple[trio.abc.HalfCloseableStream, trio.abc.HalfCloseableStream]:
    """The client's and the server's end: memory streams (buffered, or lockstep: no buffer at
    all) or a connected pair of Unix sockets, which the server reads with ``os.read`` and whose
    idle WebSocket settles to one task."""
    if transport == "socket":
        client, server = trio.socket.socketpair()
        return trio.SocketStream(client), trio.SocketStream(server)
    pair = trio.testing.lockstep_stream_pair if transport == "lockstep" else trio.testing.memory_stream_pair
    return pair()


async def exercise(example: Example) -> Run:
    run = Run()
    client, server = stream_pair(example.transport)
    channel = HTTPChannel(plain, websocket_handler=websocket_handler(example, run), **example.settings)
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


# Reading what the server wrote -----------------------------------------------------------------


@dataclasses.dataclass
class Output:
    """What the server wrote, read as a client reads it: the statuses of the HTTP answers, then
    the WebSocket's messages, pongs and close frame payload (``None`` when none came)."""

    statuses: list[int] = dataclasses.field(default_factory=list)
    messages: list[str | bytes] = dataclasses.field(default_factory=list)
    pongs: list[bytes] = dataclasses.field(default_factory=list)
    close: bytes | None = None
    whole: bool = True


def read_output(data: bytes, deflate: bool, partial: bool) -> Output:
    """Parse and check what the server wrote; unless ``partial``, every byte of it."""
    output = Output()
    rest = data
    while 101 not in output.statuses:
        end = rest.find(b"\r\n\r\n")
        if end < 0:
            assert partial, f"an incomplete HTTP answer: {rest[:200]!r}"
            output.whole = False
            return output
        lines = rest[:end].split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
        length = int(headers.get(b"content-length", b"0"))
        output.statuses.append(status)
        rest = rest[end + 4 + (0 if status == 101 else length) :]
        if status == 101:
            assert (headers.get(b"sec-websocket-extensions") == b"permessage-deflate") == deflate, headers
    read_frames(rest, deflate, partial, output)
    return output


def read_frames(data: bytes, deflate: bool, partial: bool, output: Output) -> None:
    inflater = zlib.decompressobj(-15)
    parts: list[bytes] = []
    opcode = compressed = None
    at = 0
    while at < len(data):
        assert output.close is None, f"bytes after the close frame: {data[at : at + 50]!r}"
        parsed = server_frame(data, at)
        if parsed is None:
            assert partial, f"an incomplete frame at the end: {data[at : at + 50]!r}"
            output.whole = False
            return
        (fin, rsv, code, payload), at = parsed
        assert code in (CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG), code
        if code >= CLOSE:
            assert fin and len(payload) <= 125 and not rsv, (fin, rsv, code, payload)
            if code == CLOSE:
                output.close = check_close_payload(payload)
            elif code == PONG:
                output.pongs.append(payload)
            continue
        assert (code == CONTINUATION) == (opcode is not None), "data frames out of order"
        if code != CONTINUATION:
            opcode, compressed = code, rsv == RSV1
            assert rsv in ((0, RSV1) if deflate else (0,)), rsv
        else:
            assert not rsv, rsv
        parts.append(payload)
        if fin:
            whole = b"".join(parts)
            if compressed:
                whole = inflater.decompress(whole + b"\x00\x00\xff\xff")
            output.messages.append(whole.decode() if opcode == TEXT else whole)
            parts, opcode = [], None


def server_frame(data: bytes, at: int) -> tuple[tuple[bool, int, int, bytes], int] | None:
    """The frame at ``at`` and the offset after it, or ``None`` when it is incomplete."""
    if len(data) < at + 2:
        return None
    assert not data[at + 1] & 0x80, "a server frame is never masked"
    size, start = data[at + 1] & 0x7F, at + 2
    if size == 126:
        size, start = int.from_bytes(data[at + 2 : at + 4], "big"), at + 4
    elif size == 127:
        size, start = int.from_bytes(data[at + 2 : at + 10], "big"), at + 10
    if len(data) < start + size:
        return None
    first = data[at]
    return (bool(first & 0x80), first >> 4 & 0b111, first & 0x0F, data[start : start + size]), start + size


def check_close_payload(payload: bytes) -> bytes:
    """A close frame's payload is empty, or a code a server may send and a UTF-8 reason."""
    if payload:
        assert len(payload) >= 2 and int.from_bytes(payload[:2], "big") in SENDABLE, payload
        payload[2:].decode()
    return payload


# The invariants --------------------------------------------------------------------------------


def cut_off(example: Example, run: Run) -> bool:
    """Whether the client may have lost bytes it was owed: it aborted (or gave up waiting for
    the server to close), or it read through a lockstep stream slowly enough for
    ``send_timeout`` to abort the connection, or for ``ws_close_timeout`` to pass before the
    server's close frame (waiting behind frames the client had not read) was written."""
    settings = example.settings
    slow = example.transport == "lockstep" and run.read_slept >= min(
        settings["send_timeout"], settings["ws_close_timeout"]
    )
    return example.finish == "abort" or run.gave_up or slow


def may_close_on_its_own(example: Example, run: Run) -> set[int]:
    """The codes the server may close with before it reads the first close or bad item: 1011
    when a keepalive ping may have gone unanswered for long enough (the client never answers
    pings; a client keeping open a connection with no such item waits for it), 4000 when the
    closing handler has echoed enough messages."""
    codes = set()
    settings = example.settings
    interval, timeout = settings["ws_ping_interval"], settings["ws_ping_timeout"]
    waited = run.slept + run.read_slept + run.handler_slept
    waits_for_it = example.finish == "keep_open" and example.terminal is None
    if interval is not None and timeout is not None and (waited >= interval or waits_for_it):
        codes.add(1011)
    if example.handler == "closes" and example.close_after <= len(example.messages):
        codes.add(CLOSING_HANDLER_CODE)
    return codes


def check_run(example: Example, run: Run) -> None:
    """The channel ended in bounded MockClock time, with no task and no warning left."""
    settings = example.settings
    bound = run.slept + run.read_slept + run.handler_slept + settings["ws_close_timeout"]
    bound += settings["send_timeout"] + settings["linger_timeout"] + 1.0
    if settings["ws_ping_interval"] is not None:
        bound += settings["ws_ping_interval"] + (settings["ws_ping_timeout"] or 0.0)
    if example.finish == "keep_open":
        bound += QUIET
    assert run.served_until is not None
    assert run.served_until - run.served_from <= bound, (run.served_until - run.served_from, bound)
    assert run.handlers_started == run.handlers_ended
    assert run.connections_left == 0
    assert not run.warnings, [record.getMessage() for record in run.warnings]


def check_exchange(example: Example, run: Run, output: Output, partial: bool) -> None:
    """The plain answers and the 101, the echoes and the pongs."""
    if output.whole and not partial:
        assert output.statuses == [200] * example.http_before + [101], output.statuses
    damaged = bool(example.damage)
    expected, pings = example.messages, example.pings
    intact = min(len(output.messages), len(expected))
    assert output.messages[:intact] == expected[:intact], (output.messages, expected)
    assert damaged or len(output.messages) <= len(expected), (output.messages, expected)
    answered = min(len(output.pongs), len(pings))
    assert output.pongs[:answered] == pings[:answered], (output.pongs, pings)
    assert damaged or len(output.pongs) <= len(pings), (output.pongs, pings)


def check_close(example: Example, run: Run, output: Output, partial: bool) -> None:
    """The close frame, when there is one, has the right code; when the first close or bad
    item reached the server whole, there is one (unless the client cut itself off)."""
    terminal = example.terminal
    on_its_own = may_close_on_its_own(example, run)
    close = output.close
    code = int.from_bytes(close[:2], "big") if close else None
    if terminal is None:
        if close is not None and not example.damage:
            assert code in on_its_own, (close, on_its_own)
        return
    if not partial:
        assert close is not None, f"no close frame after {terminal.kind} {terminal.name}"
    if close is None:
        return
    if terminal.kind == "bad":
        assert code == terminal.code or code in on_its_own, (terminal.name, close, terminal.code, on_its_own)
    else:
        assert close == terminal.close_payload or code in on_its_own, (close, terminal.close_payload, on_its_own)


def check(example: Example, run: Run) -> None:
    partial = cut_off(example, run)
    output = read_output(bytes(run.received), example.deflate, partial)
    terminal = example.terminal
    event(f"finish: {example.finish}, {'damaged' if example.damage else 'intact'}")
    event(f"ends with: {terminal.name or terminal.kind if terminal else 'nothing the server must answer'}")
    event(f"close code: {int.from_bytes(output.close[:2], 'big') if output.close else output.close}")
    event(f"messages echoed: {min(len(output.messages), 3)}{'+' if len(output.messages) >= 3 else ''}")
    check_run(example, run)
    check_exchange(example, run, output, partial)
    check_close(example, run, output, partial)
