"""Timeouts as cancel scopes: idle, header (slowloris), body; all under the MockClock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio
import trio.testing
from conftest import GET, echo

from trio_httpchannel import HTTPChannel, Request, Response


async def test_idle_connection_closed_quietly_before_first_request(serve, autojump_clock):
    client = await (await serve(echo, timeout=10))()
    start = trio.current_time()
    assert await client.read_to_eof() == b""
    assert 10 <= trio.current_time() - start < 11


async def test_idle_connection_closed_quietly_between_requests(serve, autojump_clock):
    client = await (await serve(echo, timeout=10))()
    await client.send(GET)
    await client.read_response()
    answered = trio.current_time()
    assert await client.read_to_eof() == b""
    assert 10 <= trio.current_time() - answered < 11


async def test_idle_timeout_does_not_cut_a_slow_handler(serve, autojump_clock):
    async def slow(request: Request) -> Response:
        await trio.sleep(100)
        return Response(200, [], b"late but fine")

    client = await (await serve(slow, timeout=10))()
    await client.send(GET)
    assert (await client.read_response()).body == b"late but fine"


async def test_idle_timer_rearmed_after_last_response(serve, autojump_clock):
    async def slow(request: Request) -> Response:
        await trio.sleep(100)
        return Response(200, [], b"ok")

    client = await (await serve(slow, timeout=10))()
    await client.send(GET)
    await client.read_response()
    answered = trio.current_time()
    assert await client.read_to_eof() == b""
    assert 10 <= trio.current_time() - answered < 11


async def test_slowloris_gets_408_at_header_timeout(serve, autojump_clock):
    client = await (await serve(echo, header_timeout=5, timeout=100))()
    start = trio.current_time()
    for byte in b"GET":
        await client.send(bytes([byte]))
        await trio.sleep(1)
    response = await client.read_response()
    assert response.status == 408
    assert 5 <= trio.current_time() - start < 6


async def test_slow_body_gets_408_at_body_timeout(serve, autojump_clock):
    client = await (await serve(echo, body_timeout=5))()
    await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
    start = trio.current_time()
    response = await client.read_response()
    assert response.status == 408
    assert 5 <= trio.current_time() - start < 6


async def test_body_timeout_counts_gaps_not_the_whole_body(serve, autojump_clock):
    client = await (await serve(echo, body_timeout=5))()
    await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
    for byte in b"0123456789":
        await trio.sleep(4)
        await client.send(bytes([byte]))
    assert (await client.read_response()).body == b"0123456789"


async def test_client_vanishing_mid_body_cancels_the_handler(serve, autojump_clock):
    outcome: list[str] = []
    reading = trio.Event()

    async def waiting(request: Request) -> Response:
        try:
            reading.set()
            await request.read()
            outcome.append("read")
        except trio.Cancelled:
            outcome.append("cancelled")
            raise
        return Response(200, [], b"")

    client = await (await serve(waiting))()
    await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
    await reading.wait()
    await client.aclose()
    await trio.sleep(1)
    assert outcome == ["cancelled"]


async def test_connection_ends_at_once_when_client_vanishes_mid_body(autojump_clock):
    """Nothing outlives the connection: the channel call returns, so its nursery is empty."""
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(HTTPChannel(echo), server)
        await client.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        await trio.sleep(1)
        await client.aclose()
    assert trio.current_time() < 2


async def test_connection_ends_when_response_to_vanished_client_fails(autojump_clock):
    async def slow(request: Request) -> Response:
        await trio.sleep(10)
        return Response(200, [], b"nobody listens")

    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(HTTPChannel(slow), server)
        await client.send_all(GET)
        await trio.sleep(1)
        await client.aclose()
    assert 10 <= trio.current_time() < 11


async def test_client_that_never_reads_is_aborted_at_send_timeout(autojump_clock):
    """Over a lock-step stream nothing is buffered: the response write waits for a reader that
    never comes, and send_timeout ends the connection."""

    async def big(request: Request) -> Response:
        return Response(200, [], b"x" * 100_000)

    client, server = trio.testing.lockstep_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, GET)
        start = trio.current_time()
        await HTTPChannel(big, send_timeout=7, timeout=100)(server)
        assert 7 <= trio.current_time() - start < 8
        nursery.cancel_scope.cancel()


async def test_slow_reader_within_send_timeout_keeps_its_connection(serve_lockstep, autojump_clock):
    """Each write waits 3 s for the client to read it, under a 5 s send_timeout: slow is fine."""

    async def pieces(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"y" * 65536

        return Response(200, [("content-length", str(4 * 65536))], body())

    client = await (await serve_lockstep(pieces, send_timeout=5))()
    await client.send(GET)
    await client.read_head()
    for _ in range(4):
        await trio.sleep(3)
        assert len(await client.receive_some(65536)) == 65536
    await client.send(GET)
    assert (await client.read_head()).status == 200
