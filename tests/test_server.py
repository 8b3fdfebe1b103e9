"""Server and serve() in process: graceful shutdown and its timeout under the MockClock."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from conftest import GET, MemoryListener, connect_tcp

from trio_httpchannel import Request, Response
from trio_httpchannel.server import Server, bind, serve


async def hangs(request: Request) -> Response:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


async def test_shutdown_closes_idle_connections_and_finishes_busy_ones(nursery: trio.Nursery) -> None:
    released = trio.Event()

    async def waits_for_release(request: Request) -> Response:
        if request.path == "/busy":
            await released.wait()
        return Response(200, [], b"released")

    listener = MemoryListener()
    server = Server(waits_for_release)
    await nursery.start(server.serve_listeners, [listener])
    idle, busy = await listener.connect(), await listener.connect()
    await idle.send(GET)
    await idle.read_response()
    await busy.send(b"GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
    await trio.testing.wait_all_tasks_blocked()
    server.shutdown()
    assert await idle.read_to_eof() == b""
    released.set()
    response = await busy.read_response()
    assert (response.status, response.header("connection")) == (200, "close")


async def test_graceful_timeout_aborts_what_is_still_running(nursery: trio.Nursery, autojump_clock: object) -> None:
    listener = MemoryListener()
    server = Server(hangs, graceful_timeout=7)
    done = trio.Event()

    async def run() -> None:
        await server.serve_listeners([listener])
        done.set()

    nursery.start_soon(run)
    await trio.testing.wait_all_tasks_blocked()
    client = await listener.connect()
    await client.send(GET)
    await trio.testing.wait_all_tasks_blocked()
    stopped_at = trio.current_time()
    server.shutdown()
    await done.wait()
    assert trio.current_time() - stopped_at == pytest.approx(7)
    assert await client.read_to_eof() == b""


async def test_serve_returns_after_the_shutdown_trigger_and_runs_the_lifespan_around_it(nursery: trio.Nursery) -> None:
    events: list[str] = []
    stop = trio.Event()

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    async def hello(request: Request) -> Response:
        return Response(200, [], b"hello")

    sockets = bind("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]
    finished = trio.Event()

    async def run() -> None:
        await serve(hello, sockets=sockets, lifespan=lifespan(), shutdown_trigger=stop.wait, handle_signals=False)
        finished.set()

    nursery.start_soon(run)
    client = await connect_tcp(port)
    await client.send(GET)
    assert (await client.read_response()).body == b"hello"
    stop.set()
    await finished.wait()
    assert events == ["startup", "shutdown"]
    assert sockets[0].fileno() != -1, "sockets passed in stay the caller's"
    sockets[0].close()


def test_bind_port_0_gives_every_address_the_same_port() -> None:
    sockets = bind("localhost", 0)
    try:
        assert len({sock.getsockname()[1] for sock in sockets}) == 1
        assert all(sock.type == socket.SOCK_STREAM for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


def test_max_connections_below_1_is_refused() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        Server(hangs, max_connections=0)
