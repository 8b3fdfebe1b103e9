"""Overload at the server: ``max_connections`` and running out of file descriptors at accept.

Past ``max_connections`` a new connection gets ``503`` with ``Connection: close`` at once and
the connections being served are untouched. When ``accept`` fails with ``EMFILE`` (and the
like) the server logs once, without a traceback, retries with a growing backoff and goes on
serving the connections it has, which is deliberately not ``trio.serve_listeners``' policy
(a logged traceback every 100 ms while it lasts). Real loopback sockets and MockClock timers,
with EMFILE from a listener that fakes it; and once for real, in a server process whose
RLIMIT_NOFILE leaves room for one connection.
"""

from __future__ import annotations

import errno
import logging
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from conftest import GET, hello

from trio_httpchannel import Request, Response, Server


class FlakyListener(trio.abc.Listener[trio.abc.Stream]):
    """A real listener whose ``accept`` fails with EMFILE while ``failing`` is set; records the
    MockClock time of every failed attempt."""

    def __init__(self, inner: trio.SocketListener) -> None:
        self.inner = inner
        self.failing = False
        self.failures: list[float] = []

    async def accept(self) -> trio.abc.Stream:
        if self.failing:
            await trio.lowlevel.checkpoint()
            self.failures.append(trio.current_time())
            raise OSError(errno.EMFILE, "Too many open files")
        return await self.inner.accept()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def start(
    nursery: trio.Nursery, handler: Callable[[Request], Awaitable[Response]], **options: object
) -> tuple[FlakyListener, Callable[[], Awaitable[trio.SocketStream]]]:
    """A Server on a loopback port behind a FlakyListener, and a way to connect to it."""
    (inner,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = FlakyListener(inner)
    server = Server(handler, **options)
    await nursery.start(server.serve_listeners, [listener])
    port = inner.socket.getsockname()[1]

    async def connect() -> trio.SocketStream:
        return await trio.open_tcp_stream("127.0.0.1", port)

    return listener, connect


async def ask(stream: trio.SocketStream) -> bytes:
    """Send a GET on a kept-alive connection; its response."""
    await stream.send_all(GET)
    return await read_response(stream)


async def read_response(stream: trio.SocketStream) -> bytes:
    """One response of the ``hello`` app, which ends with its body."""
    data = b""
    while not data.endswith(b"hello"):
        chunk = await stream.receive_some(65536)
        assert chunk, f"EOF after {data!r}"
        data += chunk
    return data


async def read_to_eof(stream: trio.SocketStream) -> bytes:
    data = bytearray()
    while chunk := await stream.receive_some(65536):
        data += chunk
    return bytes(data)


async def test_connection_past_max_connections_gets_503_and_close(nursery, autojump_clock):
    """The third connection at max_connections=2 is answered 503 + Connection: close +
    Retry-After and closed; the two served ones go on; a freed slot serves again."""
    _, connect = await start(nursery, hello, max_connections=2)
    first, second = await connect(), await connect()
    for stream in (first, second):
        assert (await ask(stream)).startswith(b"HTTP/1.1 200 ")
    third = await connect()
    await third.send_all(GET)
    refused = await read_to_eof(third)
    assert refused.startswith(b"HTTP/1.1 503 ")
    assert b"\r\nConnection: close\r\n" in refused
    assert b"\r\nretry-after: 1\r\n" in refused.lower()
    assert (await ask(first)).startswith(b"HTTP/1.1 200 ")
    await second.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert (await ask(await connect())).startswith(b"HTTP/1.1 200 ")


async def test_out_of_fds_at_accept_logs_once_backs_off_and_keeps_serving(nursery, autojump_clock, caplog):
    """While accept fails with EMFILE: one ERROR record (no traceback), retries spaced ever
    wider (not a busy loop), and the open connection is served; afterwards one note that
    accepting works again, and new connections are served."""
    listener, connect = await start(nursery, hello)
    served = await connect()
    assert (await ask(served)).startswith(b"HTTP/1.1 200 ")
    with caplog.at_level(logging.DEBUG, logger="trio_httpchannel"):
        listener.failing = True
        assert (await ask(await connect())).startswith(b"HTTP/1.1 200 ")  # the accept under way
        waiting = await connect()
        await waiting.send_all(GET)
        with trio.move_on_after(10):
            await waiting.receive_some(1)
            pytest.fail("a connection was served while accept was failing")
        for _ in range(3):
            assert (await ask(served)).startswith(b"HTTP/1.1 200 ")
        listener.failing = False
        assert (await read_response(waiting)).startswith(b"HTTP/1.1 200 ")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert sum("accepting connections again" in r.getMessage() for r in caplog.records) == 1
    gaps = [round(later - earlier, 6) for earlier, later in zip(listener.failures, listener.failures[1:])]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0]
    assert len(listener.failures) < 30, "accept is retried in a busy loop"


SERVER_AT_FD_LIMIT = """
import os, resource, sys, trio
from trio_httpchannel import Response, Server

async def hello(request):
    return Response(200, [], b"hello")

async def main():
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 1, hard))
    print(listener.socket.getsockname()[1], flush=True)
    await Server(hello).serve_listeners([listener])

trio.run(main)
"""


async def test_real_emfile_logs_once_and_serves_after_a_descriptor_frees():
    """A server process with room for one more descriptor: the first client is served, the
    second waits while accept fails with EMFILE (the first is still served meanwhile); when
    the first leaves, the second is served. One log line about it, no traceback. Real time:
    the waits are for events, bounded by fail_after, never sleeps."""
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER_AT_FD_LIMIT], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        port = int(await trio.to_thread.run_sync(server.stdout.readline))
        with trio.fail_after(20):
            first = await trio.open_tcp_stream("127.0.0.1", port)
            assert (await ask(first)).startswith(b"HTTP/1.1 200 ")
            second = await trio.open_tcp_stream("127.0.0.1", port)
            await second.send_all(GET)
            assert (await ask(first)).startswith(b"HTTP/1.1 200 ")
            await first.aclose()
            assert (await read_response(second)).startswith(b"HTTP/1.1 200 ")
    finally:
        server.kill()
        _, log = server.communicate()
    assert log.count(b"cannot accept connections") == 1, log
    assert b"Traceback" not in log
