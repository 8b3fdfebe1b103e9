"""No task, socket or connection outlives a WebSocket client, good or bad: a real loopback server
under the MockClock, N clients of each kind, then the books must balance (as tests/test_leaks.py
does for HTTP clients, with the same books: ``_leaks.py``)."""

from __future__ import annotations

import pytest
import trio
from conftest import (
    BINARY,
    DEFLATE,
    RSV1,
    TEXT,
    Books,
    Client,
    deflated,
    http_handler,
    read_to_eof,
    run_served,
    ws_close_frame,
    ws_echo,
    ws_frame,
    ws_upgrade,
)

from trio_httpchannel import HTTPChannel

N = 6
SETTINGS = {
    "ws_ping_interval": 5.0,
    "ws_ping_timeout": 5.0,
    "ws_close_timeout": 5.0,
    "linger_timeout": 5.0,
    "send_timeout": 10.0,
}


async def opened(port: int, *extra: str) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(ws_upgrade("/", *extra))
    head = b""
    while b"\r\n\r\n" not in head:
        head += await stream.receive_some(1)
    assert head.startswith(b"HTTP/1.1 101 ")
    return stream


async def protocol_error(port: int) -> None:
    async with await opened(port) as stream:
        await stream.send_all(ws_frame(TEXT, b"x", mask=False))
        assert b"\x03\xea" in await read_to_eof(stream)


async def vanish_mid_frame(port: int) -> None:
    async with await opened(port) as stream:
        await stream.send_all(ws_frame(BINARY, b"y" * 1000)[:500])


async def silent(port: int) -> None:
    async with await opened(port) as stream:
        assert b"\x03\xf3" in await read_to_eof(stream)


async def bomb(port: int) -> None:
    payload = deflated(b"\0" * (32 << 20))
    async with await opened(port, DEFLATE) as stream:
        await stream.send_all(ws_frame(BINARY, payload, rsv=RSV1))
        assert b"\x03\xf1" in await read_to_eof(stream)


async def flood_without_reading(port: int) -> None:
    async with await opened(port) as stream:
        with trio.move_on_after(1):
            while True:
                await stream.send_all(ws_frame(BINARY, b"f" * 65536))


async def clean(port: int) -> None:
    async with await opened(port) as stream:
        await stream.send_all(ws_frame(TEXT, b"hi") + ws_close_frame(1000))
        assert (await read_to_eof(stream)).endswith(b"\x88\x02\x03\xe8")


async def refused(port: int) -> None:
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(ws_upgrade(version="8"))
        assert (await read_to_eof(stream)).startswith(b"HTTP/1.1 426 ")


KINDS: dict[str, Client] = {
    client.__name__: client
    for client in (protocol_error, vanish_mid_frame, silent, bomb, flood_without_reading, clean, refused)
}


async def run_clients(clients: list[Client]) -> None:
    books = Books()
    await run_served(
        HTTPChannel(http_handler, websocket_handler=books.count(ws_echo), **SETTINGS), books, clients, settle=30
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_websocket_clients_of_one_kind_leave_no_task_socket_or_connection(autojump_clock, kind):
    await run_clients([KINDS[kind]] * N)


async def test_all_kinds_of_websocket_client_at_once_leave_nothing(autojump_clock):
    await run_clients([client for client in KINDS.values() for _ in range(N)])
