"""The four kinds of soak client, each a loop that runs until a deadline, tallying outcomes.

- ``keepalive``: one connection, a request (sometimes three pipelined) every ``think`` seconds
  on average, every answer checked against what was sent; a good request unanswered or
  answered wrong counts. The think time keeps the offered load below what one client process
  can generate, so that every kind of client gets its turn (a soak, not a benchmark).
- ``slowloris``: a request head at one byte a second; expects 408, then reconnects.
- ``oversize``: uploads a body over ``max_body_size`` (Content-Length or chunked); expects 413
  and the connection's end, then reconnects.
- ``vanish``: connects, sends part of a request (or nothing), and disappears (half of them with
  a TCP reset), then reconnects.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import socket
import struct

import trio

HOST = "127.0.0.1"


@dataclasses.dataclass
class Tally:
    good: int = 0
    ws_messages: int = 0
    wrong: list[str] = dataclasses.field(default_factory=list)
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def fail(self, what: str) -> None:
        if len(self.wrong) < 20:
            self.wrong.append(what)
        self.outcomes["wrong answers"] += 1


class Reader:
    """Reads responses (always Content-Length framed here) off a stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError(f"EOF with {bytes(self.buffer[:80])!r} buffered")
        self.buffer += data

    async def response(self) -> tuple[int, dict[bytes, bytes], bytes]:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        del self.buffer[: end + 4]
        headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
        length = int(headers.get(b"content-length", b"0"))
        while len(self.buffer) < length:
            await self._fill()
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return int(lines[0].split(b" ")[1]), headers, body

    async def eof(self) -> bool:
        """Whether the server closes after what was read (nothing more arrives)."""
        try:
            await self._fill()
        except EOFError:
            return not self.buffer
        return False


async def connect(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream(HOST, port)


def _request(rng: random.Random, serial: int) -> tuple[bytes, bytes]:
    """A request and the body its answer must have."""
    if rng.random() < 0.5:
        token = b"q%d-%d" % (serial, rng.randrange(10**9))
        return b"GET /echo?%s HTTP/1.1\r\nHost: soak\r\n\r\n" % token, token
    body = rng.randbytes(rng.choice([0, 10, 1000, 20000]))
    return b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body), body


async def keepalive(port: int, deadline: float, tally: Tally, seed: int, *, think: float = 1.0) -> None:
    rng = random.Random(seed)
    serial = 0
    try:
        async with await connect(port) as stream:
            reader = Reader(stream)
            while trio.current_time() < deadline:
                batch = [_request(rng, serial + i) for i in range(3 if rng.random() < 0.2 else 1)]
                serial += len(batch)
                await stream.send_all(b"".join(request for request, _ in batch))
                for _, expected in batch:
                    status, _, body = await reader.response()
                    if (status, body) == (200, expected):
                        tally.good += 1
                    else:
                        tally.fail(f"status {status}, {len(body)} bytes for a {len(expected)}-byte echo")
                await trio.sleep(rng.uniform(0, 2 * think))
    except (OSError, EOFError, trio.BrokenResourceError) as error:
        tally.fail(f"keep-alive connection lost: {error!r}")


async def slowloris(port: int, deadline: float, tally: Tally, seed: int) -> None:
    while trio.current_time() < deadline:
        async with await connect(port) as stream, trio.open_nursery() as nursery:
            nursery.start_soon(_dribble, stream)
            try:
                status, _, _ = await Reader(stream).response()
                tally.outcomes[f"slowloris got {status}"] += 1
            except (EOFError, trio.BrokenResourceError) as error:
                tally.outcomes[f"slowloris lost: {type(error).__name__}"] += 1
            nursery.cancel_scope.cancel()


async def _dribble(stream: trio.SocketStream) -> None:
    try:
        await stream.send_all(b"GET /slow HTTP/1.1\r\nHost: soak\r\n")
        while True:
            await stream.send_all(b"X")
            await trio.sleep(1)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def oversize(port: int, deadline: float, tally: Tally, seed: int, *, limit: int) -> None:
    rng = random.Random(seed)
    while trio.current_time() < deadline:
        body = b"o" * (limit * 4)
        if rng.random() < 0.5:
            upload = b"POST /up HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        else:
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in _split(body, 16384))
            upload = b"POST /up HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
        async with await connect(port) as stream, trio.open_nursery() as nursery:
            nursery.start_soon(_send_quietly, stream, upload)
            reader = Reader(stream)
            try:
                status, headers, _ = await reader.response()
                closed = headers.get(b"connection") == b"close" and await reader.eof()
                tally.outcomes[f"oversize got {status}{', then close' if closed else ', no close!'}"] += 1
            except (EOFError, trio.BrokenResourceError) as error:
                tally.outcomes[f"oversize lost: {type(error).__name__}"] += 1
            nursery.cancel_scope.cancel()


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def _send_quietly(stream: trio.SocketStream, data: bytes) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


VANISH_AFTER = [
    b"",
    b"GET /vanish HTTP/1.1\r\nHo",
    b"POST /vanish HTTP/1.1\r\nHost: soak\r\nContent-Length: 100000\r\n\r\npartial body",
    b"GET /vanish HTTP/1.1\r\nHost: soak\r\n\r\n",
]


async def vanish(port: int, deadline: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    while trio.current_time() < deadline:
        stream = await connect(port)
        sent = rng.choice(VANISH_AFTER)
        try:
            await stream.send_all(sent)
        except trio.BrokenResourceError:
            pass
        if rng.random() < 0.5:
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()
        tally.outcomes["vanished"] += 1
        await trio.sleep(rng.uniform(0, 0.5))
