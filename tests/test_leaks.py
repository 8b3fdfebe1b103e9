"""No task, socket or connection outlives a bad client: a real loopback server under the
MockClock, N connections of each bad kind, then the books must balance.

Counted before and after: trio tasks in the whole task tree, open file descriptors of the
process (``/proc/self/fd``), ``HTTPChannel.connection_count`` and handler tasks started versus
ended. Each kind of client runs alone (so a leak names its cause) and all kinds run at once.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
import trio
import trio.testing
from conftest import GET, Books, Client, open_fds, read_to_eof, run_served

from trio_httpchannel import HTTPChannel, Request, Response
from trio_httpchannel.asgi import ASGIHandler

N = 8
SETTINGS = dict(timeout=30.0, header_timeout=10.0, body_timeout=10.0, send_timeout=10.0, linger_timeout=5.0)


async def app(request: Request) -> Response:
    if request.path == "/big":
        return Response(200, [], b"b" * (8 * 1024 * 1024))
    body = b"" if request.path == "/unread" else await request.read()
    return Response(200, [], body)


# The bad clients -------------------------------------------------------------------------------


async def connect(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)


async def garbage(port: int) -> None:
    async with await connect(port) as stream:
        await stream.send_all(b"\x16\x03\x01GARBAGE\r\n\r\n")
        assert (await read_to_eof(stream)).startswith(b"HTTP/1.1 400 ")


async def oversize_head(port: int) -> None:
    async with await connect(port) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n")
        assert (await read_to_eof(stream)).startswith(b"HTTP/1.1 431 ")


async def unread_upload_with_close(port: int) -> None:
    async with await connect(port) as stream:
        body = b"u" * (1024 * 1024)
        await stream.send_all(b"POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        assert (await read_to_eof(stream)).startswith(b"HTTP/1.1 200 ")


async def slowloris(port: int) -> None:
    """One header byte a second, for as long as the server listens."""

    async def dribble(stream: trio.SocketStream) -> None:
        await stream.send_all(b"GET / HTTP/1.1\r\n")
        while True:
            await stream.send_all(b"X")
            await trio.sleep(1)

    async with await connect(port) as stream, trio.open_nursery() as nursery:
        nursery.start_soon(dribble, stream)
        assert (await read_to_eof(stream)).startswith(b"HTTP/1.1 408 ")
        nursery.cancel_scope.cancel()


async def vanish_mid_body(port: int) -> None:
    async with await connect(port) as stream:
        await stream.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await trio.sleep(1)


async def vanish_before_reading_a_big_response(port: int) -> None:
    async with await connect(port) as stream:
        await stream.send_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        await stream.receive_some(10)


async def idle(port: int) -> None:
    async with await connect(port) as stream:
        assert await read_to_eof(stream) == b""


async def good_then_idle(port: int) -> None:
    async with await connect(port) as stream:
        await stream.send_all(GET)
        assert (await read_to_eof(stream)).startswith(b"HTTP/1.1 200 ")


KINDS: dict[str, Client] = {
    client.__name__: client
    for client in (
        garbage,
        oversize_head,
        unread_upload_with_close,
        slowloris,
        vanish_mid_body,
        vanish_before_reading_a_big_response,
        idle,
        good_then_idle,
    )
}


# The test --------------------------------------------------------------------------------------


async def run_clients(clients: list[Client]) -> None:
    """Serve on a loopback port, run ``clients`` at once, and check that when they are gone
    (plus ``linger_timeout`` of MockClock time) nothing of theirs remains."""
    books = Books()
    await run_served(HTTPChannel(books.count(app), **SETTINGS), books, clients, settle=SETTINGS["linger_timeout"] + 1)


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_clients_of_one_kind_leave_no_task_socket_or_connection(autojump_clock, kind):
    """N clients of ``kind``: afterwards the task tree, the fd table and the channel's
    connection count are as before, and every handler task ended."""
    await run_clients([KINDS[kind]] * N)


async def test_all_kinds_at_once_leave_no_task_socket_or_connection(autojump_clock):
    """The same books balance when every kind of bad client arrives at once."""
    await run_clients([client for client in KINDS.values() for _ in range(N)])


async def test_server_stopped_leaves_no_socket(autojump_clock):
    """After the server itself is cancelled, the fd table is what it was before it started."""
    before = open_fds()
    await run_clients([garbage, idle])
    assert open_fds() == before


async def test_client_that_never_reads_is_closed_within_the_timeouts(autojump_clock):
    """Slow read: a client asks for a response and never reads it. Over a lockstep stream (no
    buffer, like a full TCP window) the channel still ends, by send_timeout."""
    client, server = trio.testing.lockstep_stream_pair()
    channel = HTTPChannel(app, **SETTINGS)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, GET)
        with trio.fail_after(SETTINGS["send_timeout"] + 1):
            await channel(server)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("kind", ["native", "asgi", "asgi-streaming"])
@pytest.mark.parametrize(
    "request_bytes",
    [GET, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"],
    ids=["get", "post"],
)
async def test_answered_requests_leave_no_reference_cycles(serve_memory, kind, request_bytes):
    """Each request's objects are freed by reference counting as soon as it is answered, so a
    busy server does not feed the cyclic garbage collector (which costs time at every pass)."""

    async def native(request: Request) -> Response:
        return Response(200, [], await request.read())

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def asgi_streaming(scope: Any, receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"."})

    handlers = {"native": native, "asgi": ASGIHandler(asgi), "asgi-streaming": ASGIHandler(asgi_streaming)}
    connect = await serve_memory(handlers[kind])
    client = await connect()
    await client.send(request_bytes)
    await client.read_response()
    gc.collect()
    gc.disable()
    try:
        for _ in range(100):
            await client.send(request_bytes)
            await client.read_response()
        assert gc.collect() < 20
    finally:
        gc.enable()
