"""The raw test client: it writes the bytes a test gives it and reads responses back byte by byte
off the wire (status line, headers, then the body as its framing says), so that the tests see
exactly what a client sees, with nothing hidden. h11 reads the same bytes (``_http_check``), so
that every response a test reads is also proven valid HTTP/1.1."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
import trio.testing
from _http_check import ResponseCheck, SentRequests
from _requests import GET


class RawResponse:
    """One response as read off the wire."""

    def __init__(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.trailers: list[tuple[bytes, bytes]] = []
        """The fields after a chunked body, as sent."""
        self.informational: list[RawResponse] = []
        """The 1xx responses read before this one."""

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        values = [value.decode("latin-1") for field, value in self.headers if field.lower() == key]
        return ", ".join(values) if values else None

    def __repr__(self) -> str:
        return f"<RawResponse {self.status} {self.headers!r} {self.body[:60]!r}>"


class RawClient:
    """A client that writes raw bytes and parses what comes back itself, while h11 reads the
    same requests and responses and fails the read of any response that is not valid HTTP/1.1
    (up to a 101: the bytes after it are another protocol's)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.eof = False
        self._sent = SentRequests()
        self._check = ResponseCheck(self._sent)

    async def send(self, data: bytes) -> None:
        self._sent.write(data)
        await self.stream.send_all(data)

    async def send_eof(self) -> None:
        assert isinstance(self.stream, trio.abc.HalfCloseableStream)
        await self.stream.send_eof()

    async def fill(self) -> bool:
        """Receive more into ``buffer``; false at the end of the stream."""
        if self.eof:
            return False
        data = await self.stream.receive_some(65536)
        if not data:
            self.eof = True
            self.take(0)
            return False
        self.buffer += data
        return True

    def take(self, count: int) -> bytes:
        """The first ``count`` bytes of ``buffer``, consumed: h11 reads them too."""
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        self._check.read(data)
        if self.eof and not self.buffer:
            self._check.read_eof()
        return data

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        """What is buffered, or else one receive from the stream (b"" at its end)."""
        if not self.buffer:
            await self.fill()
        return self.take(max_bytes)

    async def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not await self.fill():
                raise EOFError(f"connection closed before {marker!r}; got {bytes(self.buffer)!r}")
        return self.take(self.buffer.index(marker) + len(marker))

    async def read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not await self.fill():
                raise EOFError(f"connection closed {count - len(self.buffer)} bytes short")
        return self.take(count)

    async def read_to_eof(self) -> bytes:
        while await self.fill():
            pass
        return self.take(len(self.buffer))

    async def read_head(self) -> RawResponse:
        self._check.expect_head()
        head = await self.read_until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        version, status, reason = lines[0].split(b" ", 2)
        assert version == b"HTTP/1.1", lines[0]
        headers = [tuple(line.split(b": ", 1)) for line in lines[1:]]
        response = RawResponse(int(status), reason, headers, b"")  # type: ignore[arg-type]
        self._check.agree_on_head(response.status, response.reason, response.headers)
        return response

    async def read_response(self, *, head_request: bool = False) -> RawResponse:
        """The next whole response; ``head_request`` when it answers a HEAD (no body follows)."""
        response = await self.read_head()
        informational = []
        while 100 <= response.status < 200:
            informational.append(response)
            response = await self.read_head()
        response.informational = informational
        if head_request or response.status in (204, 304):
            pass
        elif response.header("transfer-encoding") == "chunked":
            response.body = await self.read_chunked(response.trailers)
        elif (length := response.header("content-length")) is not None:
            response.body = await self.read_exactly(int(length))
        else:
            response.body = await self.read_to_eof()
        self._check.agree_on_body(response.body, response.trailers)
        return response

    async def read_chunked(self, trailers: list[tuple[bytes, bytes]] | None = None) -> bytes:
        """A chunked body; the trailer fields after it go to ``trailers``."""
        body = bytearray()
        while True:
            size = int((await self.read_until(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                while (line := await self.read_until(b"\r\n")) != b"\r\n":
                    if trailers is not None:
                        trailers.append(tuple(line[:-2].split(b": ", 1)))  # type: ignore[arg-type]
                return bytes(body)
            body += await self.read_exactly(size)
            assert await self.read_exactly(2) == b"\r\n"

    async def aclose(self) -> None:
        await self.stream.aclose()


RawClientFactory = Callable[[], Awaitable[RawClient]]


class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener whose connections are memory stream pairs: ``connect()`` gives the client end."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](0)

    async def connect(self) -> RawClient:
        client, server = trio.testing.memory_stream_pair()
        await self._send.send(server)
        return RawClient(client)

    async def accept(self) -> trio.abc.Stream:
        return await self._receive.receive()

    async def aclose(self) -> None:
        await self._receive.aclose()


async def connect_tcp(port: int, host: str = "127.0.0.1") -> RawClient:
    """A raw client on a new TCP connection to ``host:port``."""
    return RawClient(await trio.open_tcp_stream(host, port))


async def connect_to(url: str) -> RawClient:
    """A raw client on a new TCP connection to the loopback server at ``url`` (``http://127.0.0.1:PORT``)."""
    return await connect_tcp(int(url.rsplit(":", 1)[1]))


async def ask(stream: trio.abc.Stream, request: bytes = GET) -> RawResponse:
    """``request`` over ``stream``, a new connection to a server in another process, and its
    response, waited for at most 30 s of wall-clock time (the other process does not run on the
    MockClock)."""
    client = RawClient(stream)
    await client.send(request)
    with trio.fail_after(30):
        return await client.read_response()


async def read_to_eof(stream: trio.abc.ReceiveStream) -> bytes:
    """All that a bare stream receives until its end, for the tests that hold one (to open many
    connections, or to be a client that misbehaves)."""
    data = bytearray()
    while chunk := await stream.receive_some(65536):
        data += chunk
    return bytes(data)
