"""Running one fuzz example (``_fuzz``): a channel over a memory or lockstep stream pair, the
client writing the example's pieces with its pauses and reading the answer at its pace, under
the MockClock."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing
from _fuzz import Example

from trio_httpchannel import HTTPChannel, Request, Response

HANG_BOUND = 1_000_000.0
"""MockClock seconds after which an example counts as hung (autojump gets there at once)."""


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


async def read_all(
    stream: trio.abc.Stream, example: Any, run: Any, sleep: Callable[[float], Awaitable[None]] = trio.sleep
) -> None:
    """Read as the example's client reads (its sizes and pauses, the pauses counted in
    ``run.read_slept`` and slept with ``sleep``) until the server's end; shared by every fuzz
    profile."""
    reads = 0
    try:
        while True:
            pause = example.read_pauses[reads % len(example.read_pauses)]
            run.read_slept += pause
            await sleep(pause)
            data = await stream.receive_some(example.read_sizes[reads % len(example.read_sizes)])
            reads += 1
            if not data:
                break
            run.received += data
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    await stream.aclose()


class _Collect(logging.Handler):
    """Keeps the warnings and errors the server logs during a run in ``run.warnings``."""

    def __init__(self, run: Any) -> None:
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
                nursery.start_soon(read_all, client, example, run, run.sleep)
                await send_pieces(client, example, run)
    finally:
        logger.removeHandler(collector)
    return run
