"""The raw test client: it writes the bytes a test gives it and reads responses back byte by byte
off the wire (status line, headers, then the body as its framing says), so that the tests see
exactly what a client sees, with nothing hidden."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio


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
