"""WebSocket timers under trio's MockClock (keepalive, pong timeout, close handshake, send
timeout) and backpressure, over memory streams, so nothing waits on the wall clock."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from conftest import (
    CLOSE,
    PING,
    PONG,
    TEXT,
    http_handler,
    open_raw_websocket,
    read_frame,
    websockets_client,
    ws_close_frame,
    ws_echo,
    ws_frame,
)

from trio_httpchannel.websocket import CloseReason, ConnectionClosed, WebSocketRequest


async def open_client(serve_memory: Any, handler: Any = ws_echo, **settings: Any) -> Any:
    connect = await serve_memory(http_handler, websocket_handler=handler, **settings)
    client = await connect()
    await open_raw_websocket(client)
    return client


async def test_the_keepalive_pings_every_interval(serve_memory, autojump_clock):
    client = await open_client(serve_memory, ws_ping_interval=7)
    start = trio.current_time()
    for n in (1, 2, 3):
        ping = await read_frame(client)
        assert ping.opcode == PING and trio.current_time() - start == pytest.approx(7 * n)
        await client.send(ws_frame(PONG, ping.payload))


async def test_an_unanswered_ping_closes_with_1011_then_tcp_after_the_close_timeout(serve_memory, autojump_clock):
    closes: list[CloseReason | None] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        with pytest.raises(ConnectionClosed):
            await ws.receive()
        closes.append(ws.closed)

    client = await open_client(serve_memory, handler, ws_ping_interval=20, ws_ping_timeout=5, ws_close_timeout=3)
    start = trio.current_time()
    assert (await read_frame(client)).opcode == PING
    close = await read_frame(client)
    assert (close.close_code, close.close_reason) == (1011, "keepalive ping timeout")
    assert trio.current_time() - start == pytest.approx(25)
    assert await client.read_to_eof() == b""
    assert trio.current_time() - start == pytest.approx(28)
    await trio.testing.wait_all_tasks_blocked()
    assert closes == [CloseReason(1006)]


async def test_a_client_answering_pings_stays_connected(serve_memory, autojump_clock):
    connect = await serve_memory(http_handler, websocket_handler=ws_echo, ws_ping_interval=20, ws_ping_timeout=5)
    async with websockets_client(await connect()) as ws:
        await trio.sleep(500)
        await ws.send("still here")
        assert await ws.recv() == "still here"


async def test_no_ping_is_sent_without_an_interval(serve_memory, autojump_clock):
    client = await open_client(serve_memory, ws_ping_interval=None)
    with trio.move_on_after(10_000) as waited:
        await read_frame(client)
    assert waited.cancelled_caught


async def test_without_a_ping_timeout_unanswered_pings_do_not_close(serve_memory, autojump_clock):
    client = await open_client(serve_memory, ws_ping_interval=20, ws_ping_timeout=None)
    for _ in range(5):
        assert (await read_frame(client)).opcode == PING
    await client.send(ws_frame(TEXT, b"alive"))
    frame = await read_frame(client)
    while frame.opcode == PING:
        frame = await read_frame(client)
    assert frame == (True, 0, TEXT, b"alive")


async def test_the_pong_timer_waits_while_the_app_leaves_messages_unread(serve_memory, autojump_clock):
    release = trio.Event()

    async def slow(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await release.wait()
        async for message in ws:
            await ws.send(message)

    client = await open_client(serve_memory, slow, ws_ping_interval=20, ws_ping_timeout=5, ws_max_queue=1)
    ping = await read_frame(client)
    await client.send(b"".join(ws_frame(TEXT, b"m%d" % n) for n in range(3)) + ws_frame(PONG, ping.payload))
    await trio.sleep(1000)
    release.set()
    assert [await read_frame(client) for _ in range(3)] == [(True, 0, TEXT, b"m%d" % n) for n in range(3)]
    assert (await read_frame(client)).opcode == PING


async def test_the_close_handshake_waits_at_most_the_close_timeout(serve_memory, autojump_clock):
    async def closer(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.close(1000)

    client = await open_client(serve_memory, closer, ws_ping_interval=None, ws_close_timeout=4)
    start = trio.current_time()
    assert (await read_frame(client)).close_code == 1000
    assert await client.read_to_eof() == b""
    assert trio.current_time() - start == pytest.approx(4)


async def test_an_answered_close_ends_the_connection_at_once(serve_memory, autojump_clock):
    async def closer(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.close(4000)
        assert ws.closed == CloseReason(4000)

    client = await open_client(serve_memory, closer, ws_ping_interval=None, ws_close_timeout=4)
    start = trio.current_time()
    assert (await read_frame(client)).close_code == 4000
    await client.send(ws_close_frame(4000))
    assert await client.read_to_eof() == b""
    assert trio.current_time() == start


async def test_a_client_that_does_not_read_is_dropped_after_send_timeout(serve_lockstep, autojump_clock):
    ended: list[tuple[float, CloseReason | None]] = []

    async def talker(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send(b"x" * 100)
        with pytest.raises(ConnectionClosed):
            await ws.receive()
        ended.append((trio.current_time(), ws.closed))

    connect = await serve_lockstep(http_handler, websocket_handler=talker, ws_ping_interval=None, send_timeout=6)
    client = await connect()
    await open_raw_websocket(client)
    start = trio.current_time()
    await trio.sleep(100)
    assert ended == [(pytest.approx(start + 6), CloseReason(1006))]


async def test_the_reader_stops_after_ws_max_queue_unread_messages(serve_lockstep):
    permits_send, permits_receive = trio.open_memory_channel[None](0)
    received: list[Any] = []

    async def lazy(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for _ in permits_receive:
            received.append(await ws.receive())

    connect = await serve_lockstep(http_handler, websocket_handler=lazy, ws_ping_interval=None, ws_max_queue=3)
    client = await connect()
    await open_raw_websocket(client)
    sent = 0

    async def flood() -> None:
        nonlocal sent
        for n in range(20):
            await client.send(ws_frame(TEXT, b"%d" % n))
            sent += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        await trio.testing.wait_all_tasks_blocked()
        assert sent == 3
        await permits_send.send(None)
        await trio.testing.wait_all_tasks_blocked()
        assert (sent, received) == (4, ["0"])
        nursery.cancel_scope.cancel()


async def test_a_ping_flood_stops_being_read_while_its_pongs_are_not_read(serve_lockstep):
    client = await open_client(serve_lockstep, ws_ping_interval=None)
    sent = 0

    async def flood() -> None:
        nonlocal sent
        while True:
            await client.send(ws_frame(PING, b"p"))
            sent += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        await trio.testing.wait_all_tasks_blocked()
        blocked_at = sent
        assert (await read_frame(client)).opcode == PONG
        await trio.testing.wait_all_tasks_blocked()
        assert (blocked_at, sent) == (2, 3)
        nursery.cancel_scope.cancel()


async def test_close_frames_cross_cleanly_when_both_sides_close_at_once(serve_memory, autojump_clock):
    async def closer(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.close(1001)

    client = await open_client(serve_memory, closer, ws_ping_interval=None)
    await client.send(ws_close_frame(1000))
    frames = [await read_frame(client)]
    assert frames[0].opcode == CLOSE
    assert await client.read_to_eof() == b""


async def test_closing_with_unread_messages_does_not_wait_for_the_close_timeout(serve_memory, autojump_clock):
    async def deaf(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await trio.sleep(1)
        await ws.close(1000)

    client = await open_client(serve_memory, deaf, ws_ping_interval=None, ws_max_queue=1, ws_close_timeout=10)
    await client.send(b"".join(ws_frame(TEXT, b"unread %d" % n) for n in range(5)))
    assert (await read_frame(client)).close_code == 1000
    start = trio.current_time()
    await client.send(ws_close_frame(1000))
    assert await client.read_to_eof() == b""
    assert trio.current_time() == start


async def test_keepalive_pings_do_not_stop_the_reading_of_a_client_that_reads_slowly(serve_lockstep, autojump_clock):
    """A client reading one chunk every ping interval, over a stream with no buffer: each ping
    would fall due just as the previous frame left."""
    client = await open_client(serve_lockstep, ws_ping_interval=5, ws_ping_timeout=None)
    received = bytearray()

    async def read_slowly() -> None:
        while True:
            await trio.sleep(5)
            received.extend(await client.stream.receive_some(65536))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_slowly)
        with trio.fail_after(1000):
            for n in range(6):
                await client.send(ws_frame(TEXT, b"m%d" % n))
        nursery.cancel_scope.cancel()
