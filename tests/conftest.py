"""Fixtures: a channel served over a real loopback socket or a memory stream, and a raw client.

The raw client reads responses byte by byte off the wire (status line, headers, then the body
as its framing says), so the tests see exactly what a client sees, with nothing hidden.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple

import pytest
import trio
import trio.testing
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import StreamingResponse
from starlette.routing import Route

from websockets.trio.client import connect as websockets_connect

from trio_httpchannel import HTTPChannel
from trio_httpchannel.asgi import ASGIHandler, Lifespan

from _h2 import H2Client, RawH2

Serve = Callable[..., Awaitable["RawClientFactory"]]


class RawResponse:
    """One response as read off the wire."""

    def __init__(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        values = [value.decode("latin-1") for field, value in self.headers if field.lower() == key]
        return ", ".join(values) if values else None

    def __repr__(self) -> str:
        return f"<RawResponse {self.status} {self.headers!r} {self.body[:60]!r}>"


class RawClient:
    """A client that writes raw bytes and parses what comes back itself."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.eof = False

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send_eof(self) -> None:
        assert isinstance(self.stream, trio.abc.HalfCloseableStream)
        await self.stream.send_eof()

    async def _fill(self) -> bool:
        if self.eof:
            return False
        data = await self.stream.receive_some(65536)
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    async def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not await self._fill():
                raise EOFError(f"connection closed before {marker!r}; got {bytes(self.buffer)!r}")
        end = self.buffer.index(marker) + len(marker)
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    async def read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not await self._fill():
                raise EOFError(f"connection closed {count - len(self.buffer)} bytes short")
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    async def read_to_eof(self) -> bytes:
        while await self._fill():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def read_head(self) -> RawResponse:
        head = await self.read_until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        version, status, reason = lines[0].split(b" ", 2)
        assert version == b"HTTP/1.1", lines[0]
        headers = [tuple(line.split(b": ", 1)) for line in lines[1:]]
        return RawResponse(int(status), reason, headers, b"")  # type: ignore[arg-type]

    async def read_response(self, *, head_request: bool = False) -> RawResponse:
        """The next whole response; ``head_request`` when it answers a HEAD (no body follows)."""
        response = await self.read_head()
        while 100 <= response.status < 200:
            response = await self.read_head()
        if head_request or response.status in (204, 304):
            return response
        length = response.header("content-length")
        if response.header("transfer-encoding") == "chunked":
            response.body = await self.read_chunked()
        elif length is not None:
            response.body = await self.read_exactly(int(length))
        else:
            response.body = await self.read_to_eof()
        return response

    async def read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int((await self.read_until(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                await self.read_until(b"\r\n")
                return bytes(body)
            body += await self.read_exactly(size)
            assert await self.read_exactly(2) == b"\r\n"

    async def aclose(self) -> None:
        await self.stream.aclose()


RawClientFactory = Callable[[], Awaitable[RawClient]]


@pytest.fixture
def serve_tcp(nursery: trio.Nursery) -> Callable[..., Awaitable[RawClientFactory]]:
    """``connect = await serve_tcp(handler, **settings)`` serves ``HTTPChannel(handler, ...)`` on
    a loopback port; ``client = await connect()`` opens a real TCP connection to it."""

    async def start(handler: Any, **settings: Any) -> RawClientFactory:
        channel = HTTPChannel(handler, **settings)
        listeners = await nursery.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]

        async def connect() -> RawClient:
            return RawClient(await trio.open_tcp_stream("127.0.0.1", port))

        return connect

    return start


def _serve_in_memory(
    nursery: trio.Nursery, make_pair: Callable[[], tuple[Any, Any]]
) -> Callable[..., Awaitable[RawClientFactory]]:
    async def start(handler: Any, **settings: Any) -> RawClientFactory:
        channel = HTTPChannel(handler, **settings)

        async def connect() -> RawClient:
            client, server = make_pair()
            nursery.start_soon(channel, server)
            return RawClient(client)

        return connect

    return start


@pytest.fixture
def serve_memory(nursery: trio.Nursery) -> Callable[..., Awaitable[RawClientFactory]]:
    """Like ``serve_tcp`` over ``trio.testing.memory_stream_pair``: for the protocol rules and
    for every timer under ``autojump_clock``."""
    return _serve_in_memory(nursery, trio.testing.memory_stream_pair)


@pytest.fixture
def serve_lockstep(nursery: trio.Nursery) -> Callable[..., Awaitable[RawClientFactory]]:
    """Like ``serve_memory`` over ``trio.testing.lockstep_stream_pair``: no buffer at all
    between client and server, so every send waits for the other side to read."""
    return _serve_in_memory(nursery, trio.testing.lockstep_stream_pair)


@pytest.fixture
def serve_asgi(nursery: trio.Nursery) -> Callable[..., Awaitable[str]]:
    """``url = await serve_asgi(app, **settings)`` runs ``app``'s lifespan startup, then serves it
    through ``ASGIHandler`` on a loopback port, and returns the server's base URL."""

    async def run(app: Any, settings: dict[str, Any], *, task_status: trio.TaskStatus[str]) -> None:
        async with Lifespan(app) as lifespan:
            channel = HTTPChannel(ASGIHandler(app, state=lifespan.state), **settings)
            async with trio.open_nursery() as inner:
                listeners = await inner.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
                task_status.started(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}")

    async def start(app: Any, **settings: Any) -> str:
        return await nursery.start(run, app, settings)  # type: ignore[no-any-return]

    return start


@pytest.fixture(params=["tcp", "memory"])
def serve(request: pytest.FixtureRequest, serve_tcp: Any, serve_memory: Any) -> Any:
    """Each test that uses it runs twice: over a real loopback socket and over memory streams."""
    return serve_tcp if request.param == "tcp" else serve_memory


# WebSocket: raw frames as a client writes them, frames as the server writes them, and an
# independent client (the websockets package's own protocol implementation, not wsproto). --------

WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WS_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
"""The key and accept token of RFC 6455 section 1.3's example."""
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
RSV1 = 0b100


def ws_upgrade(path: str = "/", *extra: str, key: str = WS_KEY, version: str = "13", method: str = "GET") -> bytes:
    """An opening handshake request for ``path``, ``extra`` header lines added."""
    lines = [f"{method} {path} HTTP/1.1", "Host: example.com", "Upgrade: websocket", "Connection: Upgrade"]
    lines += [f"Sec-WebSocket-Key: {key}", f"Sec-WebSocket-Version: {version}", *extra, "", ""]
    return "\r\n".join(lines).encode()


def ws_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bool = True) -> bytes:
    """One frame as a client writes it: masked (unless ``mask`` is false), ``rsv`` the three
    reserved bits (``RSV1`` marks a compressed message)."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mask_bit = 0x80 if mask else 0
    size = len(payload)
    if size < 126:
        head = bytes([first, mask_bit | size])
    elif size < 65536:
        head = bytes([first, mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, mask_bit | 127]) + size.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = b"\x37\xfa\x21\x3d"
    stream = (key * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")
    return head + key + masked


def ws_close_frame(code: int | None = None, reason: bytes = b"") -> bytes:
    return ws_frame(CLOSE, b"" if code is None else code.to_bytes(2, "big") + reason)


class Frame(NamedTuple):
    """A frame as the server wrote it."""

    fin: bool
    rsv: int
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        assert self.opcode == CLOSE, self
        return int.from_bytes(self.payload[:2], "big") if self.payload else None

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode()


def parse_server_frame(data: bytes | bytearray) -> tuple[Frame, int] | None:
    """The first frame in ``data`` and its length, or ``None`` when it is incomplete."""
    if len(data) < 2:
        return None
    assert not data[1] & 0x80, "a server frame is never masked"
    size, offset = data[1] & 0x7F, 2
    if size == 126:
        size, offset = int.from_bytes(data[2:4], "big"), 4
    elif size == 127:
        size, offset = int.from_bytes(data[2:10], "big"), 10
    if len(data) < offset + size:
        return None
    frame = Frame(bool(data[0] & 0x80), data[0] >> 4 & 0b111, data[0] & 0x0F, bytes(data[offset : offset + size]))
    return frame, offset + size


async def read_frame(client: RawClient) -> Frame:
    """The next frame the server wrote to ``client``."""
    while (parsed := parse_server_frame(client.buffer)) is None:
        if not await client._fill():
            raise EOFError(f"connection closed before a whole frame; got {bytes(client.buffer)!r}")
    frame, size = parsed
    del client.buffer[:size]
    return frame


async def open_raw_websocket(client: RawClient, path: str = "/", *extra: str) -> RawResponse:
    """Send a handshake for ``path`` and read the ``101``."""
    await client.send(ws_upgrade(path, *extra))
    response = await client.read_head()
    assert response.status == 101, response
    return response


def websockets_client(client: RawClient, path: str = "/", **options: Any) -> Any:
    """``async with websockets_client(client, "/path") as ws``: the websockets package's trio
    client over ``client``'s stream. Its own keepalive is off unless ``ping_interval`` is given."""
    options.setdefault("ping_interval", None)
    return websockets_connect(f"ws://127.0.0.1{path}", stream=client.stream, proxy=None, **options)


class EventStream:
    """A server-sent-events stream: one event, then a wait for an event that never comes (the
    wait between two events, made endless), and a record of how the generator ended."""

    def __init__(self) -> None:
        self.ended = trio.Event()
        self.never = trio.Event()

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            yield b"data: first\n\n"
            await self.never.wait()
            yield b"data: never\n\n"
        finally:
            self.ended.set()

    def app(self) -> Starlette:
        async def events(request: StarletteRequest) -> StreamingResponse:
            return StreamingResponse(self.stream(), media_type="text/event-stream")

        async def plain(request: StarletteRequest) -> StreamingResponse:
            async def body() -> AsyncIterator[bytes]:
                yield b"plain"

            return StreamingResponse(body(), media_type="text/plain")

        return Starlette(routes=[Route("/events", events, methods=["GET", "HEAD"]), Route("/plain", plain)])

class H2Server:
    """A channel served for HTTP/2 tests: ``await server.connect()`` opens a connection with
    h2's client (preface and SETTINGS sent), ``await server.raw()`` one for raw frames."""

    def __init__(self, channel: HTTPChannel) -> None:
        self.channel = channel
        self.open_stream: Callable[[], Awaitable[trio.abc.Stream]]
        self.port = 0
        self._running = 0
        self._all_closed = trio.Event()

    async def serve(self, stream: trio.abc.Stream) -> None:
        """The channel on ``stream``, counted until it returns."""
        self._running += 1
        try:
            await self.channel(stream)
        finally:
            self._running -= 1
            if not self._running:
                self._all_closed.set()

    async def connect(self, **settings: int) -> H2Client:
        client = H2Client(await self.open_stream())
        await client.start(**settings)
        return client

    async def raw(self) -> RawH2:
        return RawH2(await self.open_stream())

    async def raw_client(self) -> H2Client:
        """h2's client on a connection that has sent nothing yet (to ask ``Upgrade: h2c``)."""
        return H2Client(await self.open_stream())

    async def wait_closed(self) -> None:
        """Wait until the server has returned from every connection it served (so nothing of
        them is left running)."""
        if self._running:
            self._all_closed = trio.Event()
            await self._all_closed.wait()


def _h2_tcp(nursery: trio.Nursery) -> Callable[..., Awaitable[H2Server]]:
    async def start(handler: Any, **settings: Any) -> H2Server:
        server = H2Server(HTTPChannel(handler, **settings))
        listeners = await nursery.start(functools.partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1"))
        server.port = listeners[0].socket.getsockname()[1]
        server.open_stream = functools.partial(trio.open_tcp_stream, "127.0.0.1", server.port)
        return server

    return start


def _h2_memory(nursery: trio.Nursery) -> Callable[..., Awaitable[H2Server]]:
    async def start(handler: Any, **settings: Any) -> H2Server:
        server = H2Server(HTTPChannel(handler, **settings))

        async def open_stream() -> trio.abc.Stream:
            client, served = trio.testing.memory_stream_pair()
            nursery.start_soon(server.serve, served)
            return client

        server.open_stream = open_stream
        return server

    return start


@pytest.fixture(params=["tcp", "memory"])
def serve_h2(request: pytest.FixtureRequest, nursery: trio.Nursery) -> Callable[..., Awaitable[H2Server]]:
    """``server = await serve_h2(handler, **settings)``: over a loopback socket and over memory
    streams (each test runs both ways)."""
    return _h2_tcp(nursery) if request.param == "tcp" else _h2_memory(nursery)


@pytest.fixture
def serve_h2_memory(nursery: trio.Nursery) -> Callable[..., Awaitable[H2Server]]:
    """Like ``serve_h2`` over memory streams only: for the timers, under ``autojump_clock``."""
    return _h2_memory(nursery)


@pytest.fixture
def serve_h2_tcp(nursery: trio.Nursery) -> Callable[..., Awaitable[H2Server]]:
    """Like ``serve_h2`` over a loopback socket only: for clients that are other programs."""
    return _h2_tcp(nursery)
