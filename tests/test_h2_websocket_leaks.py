"""No task, socket or connection outlives a WebSocket over HTTP/2 (RFC 8441), good or bad: a real
loopback server under the MockClock, N clients of each kind, then the books must balance (as
tests/test_ws_leaks.py does over HTTP/1.1, with the same books: ``_leaks.py``). The clients are
h2's client side and wsproto's frame layer (``_h2_ws.py``: no client program speaks RFC 8441)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from _h2 import H2Client
from _h2_ws import H2WebSocket
from conftest import Books, Client, http_handler, run_served, ws_echo, ws_frame
from h2.errors import ErrorCodes
from wsproto.events import CloseConnection, Ping, TextMessage

from trio_httpchannel import HTTPChannel

N = 6
SETTINGS = {
    "ws_ping_interval": 5.0,
    "ws_ping_timeout": 5.0,
    "ws_close_timeout": 5.0,
    "linger_timeout": 5.0,
    "send_timeout": 10.0,
}


@asynccontextmanager
async def connected(port: int) -> AsyncIterator[H2Client]:
    """An HTTP/2 connection with h2's client, closed (without GOAWAY) on the way out."""
    client = H2Client(await trio.open_tcp_stream("127.0.0.1", port))
    async with client.stream:
        await client.start()
        yield client


async def clean(port: int) -> None:
    async with connected(port) as client:
        ws = await H2WebSocket.open(client)
        await ws.send(TextMessage("hi"))
        assert await ws.event() == TextMessage("hi")
        await ws.send(CloseConnection(1000), end=True)
        assert (await ws.until_stream_over()).reset is None


async def reset(port: int) -> None:
    async with connected(port) as client:
        ws = await H2WebSocket.open(client)
        client.conn.reset_stream(ws.stream_id, ErrorCodes.CANCEL)
        assert (await client.get("/")).status == 200


async def vanish(port: int) -> None:
    async with connected(port) as client:
        ws = await H2WebSocket.open(client)
        await ws.send_raw(ws_frame(0x2, b"y" * 1000)[:500])


async def silent(port: int) -> None:
    async with connected(port) as client:
        ws = await H2WebSocket.open(client)
        assert isinstance(await ws.event(), Ping)
        event = await ws.event()
        assert isinstance(event, CloseConnection) and event.code == 1011
        response = await ws.until_stream_over()  # no close frame from us: reset at ws_close_timeout
        assert (response.ended, response.reset) == (False, ErrorCodes.CANCEL)


async def protocol_error(port: int) -> None:
    async with connected(port) as client:
        ws = await H2WebSocket.open(client)
        await ws.send_raw(ws_frame(0x1, b"x", mask=False))
        event = await ws.event()
        assert isinstance(event, CloseConnection) and event.code == 1002
        await ws.end()
        await ws.until_stream_over()


async def refused(port: int) -> None:
    async with connected(port) as client:
        ws = await H2WebSocket.open(client, version="8")
        assert (await ws.until_stream_over()).status == 426


KINDS: dict[str, Client] = {
    client.__name__: client for client in (clean, reset, vanish, silent, protocol_error, refused)
}


async def run_clients(clients: list[Client]) -> None:
    books = Books()
    channel = HTTPChannel(http_handler, websocket_handler=books.count(ws_echo), **SETTINGS)
    await run_served(channel, books, clients, settle=30)


@pytest.mark.parametrize("kind", KINDS)
async def test_http2_websocket_clients_of_one_kind_leave_no_task_socket_or_connection(autojump_clock, kind):
    await run_clients([KINDS[kind]] * N)


async def test_all_kinds_of_http2_websocket_client_at_once_leave_nothing(autojump_clock):
    await run_clients([client for client in KINDS.values() for _ in range(N)])
