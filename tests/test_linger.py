"""Lingering close: the last response always arrives whole, then the connection ends."""

from __future__ import annotations

import trio
import trio.testing
from conftest import MB

from trio_httpchannel import HTTPChannel, Request, Response


async def answer_without_reading(request: Request) -> Response:
    return Response(200, [("content-type", "text/plain")], b"not reading that")


async def test_unread_upload_still_gets_whole_response_then_eof(serve_tcp, autojump_clock):
    """The seed's testLingeringClose: 1 MB uploaded to a handler that never reads it."""
    client = await (await serve_tcp(answer_without_reading))()
    body = b"u" * MB
    async with trio.open_nursery() as nursery:

        async def upload() -> None:
            await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
            await client.send(body)
            await client.send_eof()

        nursery.start_soon(upload)
        response = await client.read_response()
        assert response.body == b"not reading that"
        assert response.header("connection") == "close"
        assert await client.read_to_eof() == b""


async def run_until_closed(handler, request: bytes, *, client_closes: bool, **settings) -> float:
    """Serve one connection over memory streams; the time the channel took to close it after
    the response arrived."""
    client, server = trio.testing.memory_stream_pair()
    answered = 0.0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(HTTPChannel(handler, **settings), server)
        await client.send_all(request)
        while not await client.receive_some(65536) == b"":
            answered = trio.current_time()
        if client_closes:
            await client.send_all(b"more bytes the server must swallow")
            await client.send_eof()
    return trio.current_time() - answered


async def test_linger_ends_when_client_closes(autojump_clock):
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc"
    elapsed = await run_until_closed(answer_without_reading, request, client_closes=True, linger_timeout=20)
    assert elapsed < 1


async def test_linger_ends_at_linger_timeout_when_client_never_closes(autojump_clock):
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc"
    elapsed = await run_until_closed(answer_without_reading, request, client_closes=False, linger_timeout=20)
    assert 20 <= elapsed < 21


async def test_linger_after_bad_request(autojump_clock):
    elapsed = await run_until_closed(answer_without_reading, b"GARBAGE\r\n\r\n", client_closes=False, linger_timeout=7)
    assert 7 <= elapsed < 8


async def test_tcp_client_sees_half_close_then_full_close_after_linger(serve_tcp, autojump_clock):
    client = await (await serve_tcp(answer_without_reading, linger_timeout=5))()
    await client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await client.read_response()
    assert await client.read_to_eof() == b""
    half_closed = trio.current_time()
    await client.send(b"the server still reads and discards this")
    with trio.move_on_after(10):
        while True:
            try:
                await client.send(b"x" * 1000)
            except trio.BrokenResourceError:
                break
            await trio.sleep(0.5)
    assert 5 <= trio.current_time() - half_closed < 7


class NoHalfClose(trio.abc.Stream):
    """A stream that cannot half-close, like ``trio.SSLStream``."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner

    async def send_all(self, data: bytes) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_stream_without_half_close_drains_then_closes(autojump_clock):
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(HTTPChannel(answer_without_reading, linger_timeout=5), NoHalfClose(server))
        await client.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
        received = b""
        while b"not reading that" not in received:
            received += await client.receive_some(65536)
        answered = trio.current_time()
        await client.send_all(b"d" * 50000)
        assert await client.receive_some(65536) == b""
    assert 5 <= trio.current_time() - answered < 6
