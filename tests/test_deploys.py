"""Deploys without errors, in process: at shutdown the listeners stop at once (a new connection
is refused, so its client or balancer goes elsewhere), while the connections already waiting in
the listen backlog are accepted and answered with ``Connection: close``, not reset."""

from __future__ import annotations

import random
import socket

import pytest
import trio
import trio.testing
from conftest import GET, RawClient, connect_tcp, echo, hello

from trio_httpchannel import HTTPChannel, Request, Response
from trio_httpchannel._headers import Headers
from trio_httpchannel._request import RequestBody
from trio_httpchannel.server import Server, bind, serve
from trio_httpchannel.server.request_limit import RequestLimit, jittered


def connect_blocking(port: int) -> socket.socket:
    """A connection completed by the kernel alone: it waits in the backlog until accepted."""
    return socket.create_connection(("127.0.0.1", port))


def adopt(sock: socket.socket) -> RawClient:
    return RawClient(trio.SocketStream(trio.socket.from_stdlib_socket(sock)))


class BehindListener(trio.abc.Listener[trio.abc.Stream]):
    """A real listening socket whose accept loop never gets to accept: what a server's backlog
    holds when the connections arrive faster than it accepts, at the moment it stops."""

    def __init__(self, socket: trio.socket.SocketType) -> None:
        self.socket = socket

    async def accept(self) -> trio.abc.Stream:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        self.socket.close()
        await trio.lowlevel.checkpoint()


async def test_connections_in_the_backlog_at_shutdown_are_answered_with_close(nursery: trio.Nursery) -> None:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    server = Server(hello)
    await nursery.start(server.serve_listeners, [BehindListener(listener.socket)])
    waiting = [adopt(connect_blocking(port)) for _ in range(3)]
    for client in waiting:
        await client.send(GET)
    server.shutdown()
    for client in waiting:
        with trio.fail_after(10):
            response = await client.read_response()
        assert (response.status, response.body, response.header("connection")) == (200, b"hello", "close")
    with pytest.raises(ConnectionRefusedError):
        connect_blocking(port)


async def test_after_shutdown_a_new_connection_is_refused(nursery: trio.Nursery) -> None:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    server = Server(echo)
    await nursery.start(server.serve_listeners, [listener])
    busy = await connect_tcp(port)
    await busy.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel")  # in flight: shutdown waits
    await trio.testing.wait_all_tasks_blocked()
    server.shutdown()
    await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(ConnectionRefusedError):
        connect_blocking(port)
    await busy.send(b"lo")
    response = await busy.read_response()
    assert (response.body, response.header("connection")) == (b"hello", "close")


async def test_serve_closes_the_sockets_it_owns_at_shutdown(nursery: trio.Nursery) -> None:
    sockets = bind("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]
    stop = trio.Event()
    released = trio.Event()

    async def slow(request: Request) -> Response:
        await released.wait()
        return Response(200, [], b"late")

    async def run() -> None:
        await serve(slow, sockets=sockets, own_sockets=True, shutdown_trigger=stop.wait, handle_signals=False)

    nursery.start_soon(run)
    busy = await connect_tcp(port)
    await busy.send(GET)
    await trio.testing.wait_all_tasks_blocked()
    stop.set()
    await trio.testing.wait_all_tasks_blocked()
    assert sockets[0].fileno() == -1
    with pytest.raises(ConnectionRefusedError):
        connect_blocking(port)
    released.set()
    assert (await busy.read_response()).body == b"late"


# The channel's side: a connection that starts while the server stops -------------------------------


async def test_a_connection_started_during_shutdown_is_answered_once_with_close(nursery: trio.Nursery) -> None:
    channel = HTTPChannel(hello)
    channel.shutdown()
    client, server = trio.testing.memory_stream_pair()
    nursery.start_soon(channel, server)
    raw = RawClient(client)
    await raw.send(GET + GET)
    response = await raw.read_response()
    assert (response.status, response.header("connection")) == (200, "close")
    assert await raw.read_to_eof() == b"", "the pipelined second request is not answered"


async def test_a_silent_connection_started_during_shutdown_closes_at_header_timeout(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    channel = HTTPChannel(hello, header_timeout=3, timeout=75)
    channel.shutdown()
    client, server = trio.testing.memory_stream_pair()
    nursery.start_soon(channel, server)
    started = trio.current_time()
    assert await RawClient(client).read_to_eof() == b""
    assert trio.current_time() - started == pytest.approx(3)


def test_jittered_limits_stay_within_the_jitter() -> None:
    rng = random.Random(15)
    limits = {jittered(100, 10, rng) for _ in range(200)}
    assert min(limits) >= 100 and max(limits) <= 110 and len(limits) > 1
    assert jittered(100, 0, rng) == 100


async def test_the_request_limit_calls_retire_once_at_the_limit_and_still_handles_later_requests() -> None:
    retired: list[int] = []
    limit = RequestLimit(hello, 2)
    limit.retire = lambda: retired.append(limit.count)
    request = Request("GET", "/", "1.1", Headers([]), RequestBody(None))
    bodies = [(await limit(request)).body for _ in range(3)]
    assert bodies == [b"hello"] * 3 and retired == [2]
