"""Sealed listeners (``server.sealing``): at shutdown a server that alone holds its listening
sockets seals them before it takes their backlog, so that a connection the kernel completes
between the last accept and the close (a process preempted there under load) is not reset with
its request sent, but held back and refused, which a balancer retries elsewhere. Real loopback
sockets; Linux, where the seal exists."""

from __future__ import annotations

import errno
import functools
import socket
import sys

import pytest
import trio
import trio.testing
from conftest import GET, RawClient, hello

from trio_httpchannel.server import Server, bind, serve
from trio_httpchannel.server import serving as serving_module

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sealing is Linux's socket filter")

CONNECT_WAIT = 10
"""Bound of the wait for a held-back connection to be refused (its SYN is sent again after 1 s)."""


def start_connecting(port: int) -> socket.socket:
    """A connection started without waiting for it: the kernel completes it (into the backlog)
    unless the listener drops its SYN."""
    sock = socket.socket()
    sock.setblocking(False)
    assert sock.connect_ex(("127.0.0.1", port)) == errno.EINPROGRESS
    return sock


async def connect_outcome(sock: socket.socket) -> int:
    """How the connection started on ``sock`` ended: 0 (connected) or the errno."""
    with trio.fail_after(CONNECT_WAIT):
        await trio.lowlevel.wait_writable(sock)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def connect_after_the_last_accept(monkeypatch: pytest.MonkeyPatch, port: int, late: list[socket.socket]) -> None:
    """Make a client connect right after the server has taken its backlog and before it closes
    the listener: the window a preempted process leaves open."""
    take_backlog = serving_module._accept_backlog

    def taken_then_connect(listener: trio.SocketListener, *, seal: bool) -> list[trio.abc.Stream]:
        streams = take_backlog(listener, seal=seal)
        late.append(start_connecting(port))
        return streams

    monkeypatch.setattr(serving_module, "_accept_backlog", taken_then_connect)


async def test_a_connection_made_between_the_last_accept_and_the_close_is_refused_not_reset(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unsealed, the kernel would complete it into the backlog and the close would reset it
    (its outcome ECONNRESET, checked by hand with ``exclusive=False``): what lost requests
    behind HAProxy in a rolling restart under load. Sealed, it is refused, which a balancer
    retries."""
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    late: list[socket.socket] = []
    connect_after_the_last_accept(monkeypatch, port, late)
    server = Server(hello)
    await nursery.start(functools.partial(server.serve_listeners, [listener], exclusive=True))
    server.shutdown()
    await trio.testing.wait_all_tasks_blocked()
    (sock,) = late
    with sock:
        assert await connect_outcome(sock) == errno.ECONNREFUSED


async def test_the_connections_in_a_sealed_backlog_are_answered(nursery: trio.Nursery) -> None:
    """What the kernel completed before the seal is accepted and served: the seal drops no
    packet of an established connection."""
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    server = Server(hello)
    waiting = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    clients = [RawClient(trio.SocketStream(trio.socket.from_stdlib_socket(sock))) for sock in waiting]
    for client in clients:
        await client.send(GET)
    await nursery.start(functools.partial(server.serve_listeners, [listener], exclusive=True))
    server.shutdown()
    for client in clients:
        response = await client.read_response()
        assert (response.status, response.body, response.header("connection")) == (200, b"hello", "close")


async def test_a_socket_someone_else_holds_keeps_accepting_after_the_server_stops(nursery: trio.Nursery) -> None:
    """``own_sockets`` without ``exclusive_sockets`` (a worker's, whose supervisor keeps a copy):
    the server closes its own and does not seal the socket, on which the kernel goes on
    completing connections for the others holding it."""
    sockets = bind("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]
    kept = sockets[0].dup()
    stop = trio.Event()
    done = trio.Event()

    async def run() -> None:
        await serve(hello, sockets=sockets, own_sockets=True, shutdown_trigger=stop.wait, handle_signals=False)
        done.set()

    nursery.start_soon(run)
    await trio.testing.wait_all_tasks_blocked()
    stop.set()
    await done.wait()
    with kept, start_connecting(port) as sock:
        assert await connect_outcome(sock) == 0
        accepted, _ = kept.accept()
        accepted.close()
