"""Serving a channel for the HTTP/2 tests: over a loopback socket or memory streams, with h2's
client side or raw frames on each connection (the fixtures are in conftest.py)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing
from _h2 import H2Client, RawH2

from trio_httpchannel import HTTPChannel

__all__ = ["H2Server", "h2_memory", "h2_tcp"]


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


def h2_tcp(nursery: trio.Nursery) -> Callable[..., Awaitable[H2Server]]:
    async def start(handler: Any, **settings: Any) -> H2Server:
        server = H2Server(HTTPChannel(handler, **settings))
        listeners = await nursery.start(functools.partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1"))
        server.port = listeners[0].socket.getsockname()[1]
        server.open_stream = functools.partial(trio.open_tcp_stream, "127.0.0.1", server.port)
        return server

    return start


def h2_memory(nursery: trio.Nursery) -> Callable[..., Awaitable[H2Server]]:
    async def start(handler: Any, **settings: Any) -> H2Server:
        server = H2Server(HTTPChannel(handler, **settings))

        async def open_stream() -> trio.abc.Stream:
            client, served = trio.testing.memory_stream_pair()
            nursery.start_soon(server.serve, served)
            return client

        server.open_stream = open_stream
        return server

    return start
