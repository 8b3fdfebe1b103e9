"""An idle WebSocket whose handler waits in ``receive()`` settles to one task (``_inbox.py``): the
reader task ends and the waiting task watches the socket, with the reader's deadlines. Nothing
the seed's model promises may change: pings answered and sent on time, the close noticed,
no message lost when the watcher is cancelled, sends from other tasks, ``ws_max_queue``.
Over real loopback sockets (a settled WebSocket waits on the socket's descriptor; memory
streams never settle) under the MockClock."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from conftest import (
    CLOSE,
    PING,
    PONG,
    TEXT,
    RawClient,
    connect_tcp,
    http_handler,
    open_raw_websocket,
    read_frame,
    websockets_client,
    ws_close_frame,
    ws_frame,
)

from trio_httpchannel import HTTPChannel
from trio_httpchannel.websocket import CloseReason, ConnectionClosed, WebSocket, WebSocketRequest

Handler = Callable[[WebSocket], Awaitable[None]]


class Served:
    """A channel on a loopback port whose WebSocket handler accepts and runs ``handler`` with
    the WebSocket; ``websockets`` holds every WebSocket accepted, ``closed`` why each ended."""

    def __init__(self, channel: HTTPChannel, port: int) -> None:
        self.channel = channel
        self.port = port
        self.websockets: list[WebSocket] = []
        self.closed: list[CloseReason | None] = []

    async def open(self) -> RawClient:
        client = await connect_tcp(self.port)
        await open_raw_websocket(client)
        return client

    def settled(self) -> bool:
        """Whether the (only) WebSocket has no reader task now."""
        (ws,) = self.websockets
        return ws._session.settled


@pytest.fixture
def serve(nursery: trio.Nursery) -> Callable[..., Awaitable[Served]]:
    async def start(handler: Handler, **settings: Any) -> Served:
        async def websocket_handler(request: WebSocketRequest) -> None:
            ws = await request.accept()
            served.websockets.append(ws)
            try:
                await handler(ws)
            finally:
                served.closed.append(ws.closed)

        channel = HTTPChannel(http_handler, websocket_handler=websocket_handler, **settings)
        listeners = await nursery.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
        served = Served(channel, listeners[0].socket.getsockname()[1])
        return served

    return start


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


def count_tasks() -> int:
    """Every task of this run."""
    count = 0
    nurseries = list(trio.lowlevel.current_root_task().child_nurseries)
    while nurseries:
        nursery = nurseries.pop()
        count += len(nursery.child_tasks)
        for task in nursery.child_tasks:
            nurseries.extend(task.child_nurseries)
    return count


async def test_an_idle_websocket_settles_to_its_handlers_task(serve, autojump_clock):
    served = await serve(echo, ws_ping_interval=None)
    client = await served.open()
    await client.send(ws_frame(TEXT, b"hello"))
    assert (await read_frame(client)).payload == b"hello"
    busy = count_tasks()
    assert not served.settled()
    await trio.sleep(1)
    assert served.settled()
    assert count_tasks() == busy - 1


async def test_a_settled_websocket_serves_the_websockets_client_across_idle_hours(serve, autojump_clock):
    """Keepalive pings from the server (answered by the client's own protocol code) and a
    message after each idle hour, each echoed."""
    served = await serve(echo, ws_ping_interval=20, ws_ping_timeout=5)
    async with websockets_client(await connect_tcp(served.port)) as ws:
        for hour in range(3):
            await trio.sleep(3605)  # not on a ping (every 20 s): settled within 3.2 s of each
            assert served.settled()
            await ws.send(f"after hour {hour}")
            assert await ws.recv() == f"after hour {hour}"
    assert served.closed == [CloseReason(1000)]


async def test_keepalive_pings_go_out_on_time_while_settled(serve, autojump_clock):
    served = await serve(echo, ws_ping_interval=7, ws_ping_timeout=5)
    client = await served.open()
    start = trio.current_time()
    for n in (1, 2, 3):
        await trio.sleep(4)  # the settle time doubles with each waking, up to 1.6 s
        assert served.settled()
        ping = await read_frame(client)
        assert ping.opcode == PING and trio.current_time() - start == pytest.approx(7 * n)
        await client.send(ws_frame(PONG, ping.payload))


async def test_a_ping_unanswered_while_settled_closes_with_1011(serve, autojump_clock):
    served = await serve(echo, ws_ping_interval=20, ws_ping_timeout=5, ws_close_timeout=3)
    client = await served.open()
    start = trio.current_time()
    assert (await read_frame(client)).opcode == PING
    await trio.sleep(1)
    assert served.settled()
    close = await read_frame(client)
    assert (close.close_code, close.close_reason) == (1011, "keepalive ping timeout")
    assert trio.current_time() - start == pytest.approx(25)
    assert await client.read_to_eof() == b""
    assert trio.current_time() - start == pytest.approx(28)


async def test_a_client_ping_wakes_a_settled_websocket_for_its_pong(serve, autojump_clock):
    served = await serve(echo, ws_ping_interval=None)
    client = await served.open()
    await trio.sleep(10)
    assert served.settled()
    await client.send(ws_frame(PING, b"are you there"))
    assert await read_frame(client) == (True, 0, PONG, b"are you there")


async def test_a_receiver_cancelled_while_it_watches_loses_no_message(serve, autojump_clock):
    cancelled: list[float] = []

    async def handler(ws: WebSocket) -> None:
        while True:
            with trio.move_on_after(10) as waiting:
                message = await ws.receive()
            if waiting.cancelled_caught:
                cancelled.append(trio.current_time())
                continue
            await ws.send(message)

    served = await serve(handler, ws_ping_interval=None)
    client = await served.open()
    start = trio.current_time()
    await trio.sleep(15)
    await client.send(ws_frame(TEXT, b"after a cancelled watch"))
    assert (await read_frame(client)).payload == b"after a cancelled watch"
    assert [moment - start for moment in cancelled] == [pytest.approx(10)]


async def test_a_handler_that_stopped_receiving_still_answers_pings_and_keeps_messages(serve, autojump_clock):
    async def handler(ws: WebSocket) -> None:
        with trio.move_on_after(5):
            await ws.receive()
        await trio.sleep(1000)
        await ws.send(await ws.receive())

    served = await serve(handler, ws_ping_interval=None)
    client = await served.open()
    await trio.sleep(10)
    assert not served.settled()
    await client.send(ws_frame(PING, b"p"))
    assert await read_frame(client) == (True, 0, PONG, b"p")
    await client.send(ws_frame(TEXT, b"kept"))
    assert (await read_frame(client)).payload == b"kept"
    assert trio.current_time() > 1000


async def test_sends_from_another_task_go_out_while_the_receiver_watches(serve, autojump_clock):
    async def handler(ws: WebSocket) -> None:
        async with trio.open_nursery() as nursery:

            async def tick() -> None:
                for n in range(3):
                    await trio.sleep(10)
                    await ws.send(f"tick {n}")

            nursery.start_soon(tick)
            await echo(ws)

    served = await serve(handler, ws_ping_interval=None)
    client = await served.open()
    for n in range(3):
        await trio.sleep(5)
        assert served.settled()
        assert (await read_frame(client)).payload == f"tick {n}".encode()
    await client.send(ws_frame(TEXT, b"still echoing"))
    assert (await read_frame(client)).payload == b"still echoing"


async def test_a_close_from_another_task_ends_a_settled_websocket(serve, autojump_clock):
    async def handler(ws: WebSocket) -> None:
        async with trio.open_nursery() as nursery:

            async def close_later() -> None:
                await trio.sleep(10)
                await ws.close(1000, "done")

            nursery.start_soon(close_later)
            with pytest.raises(ConnectionClosed):
                await ws.receive()

    served = await serve(handler, ws_ping_interval=None, ws_close_timeout=3)
    client = await served.open()
    await trio.sleep(5)
    assert served.settled()
    close = await read_frame(client)
    assert (close.close_code, close.close_reason) == (1000, "done")
    await client.send(ws_close_frame(1000))
    assert await client.read_to_eof() == b""
    await client.stream.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert served.closed == [CloseReason(1000)]


async def test_shutdown_closes_a_settled_websocket_with_1001(serve, autojump_clock):
    served = await serve(echo, ws_ping_interval=None)
    client = await served.open()
    await trio.sleep(5)
    assert served.settled()
    served.channel.shutdown()
    close = await read_frame(client)
    assert close.opcode == CLOSE and close.close_code == 1001
    await client.send(ws_close_frame(1001))
    assert await client.read_to_eof() == b""


async def test_a_client_close_reaches_a_settled_receiver(serve, autojump_clock):
    served = await serve(echo, ws_ping_interval=None)
    client = await served.open()
    await trio.sleep(5)
    assert served.settled()
    await client.send(ws_close_frame(4001, b"bye"))
    close = await read_frame(client)
    assert (close.close_code, close.close_reason) == (4001, "bye")
    assert await client.read_to_eof() == b""
    await trio.testing.wait_all_tasks_blocked()
    assert served.closed == [CloseReason(4001, "bye")]


async def test_a_client_vanishing_reaches_a_settled_receiver(serve, autojump_clock):
    served = await serve(echo, ws_ping_interval=None)
    client = await served.open()
    await trio.sleep(5)
    assert served.settled()
    await client.stream.aclose()
    while not served.closed:
        await trio.sleep(1)
    assert served.closed == [CloseReason(1006)]


async def test_a_websocket_settles_once_its_handler_drains_a_full_queue(serve, autojump_clock):
    """While ``ws_max_queue`` messages wait the reader waits for room (and does not read):
    no settling then; once the handler takes them all and waits, it settles, nothing lost."""
    received: list[str | bytes] = []

    async def handler(ws: WebSocket) -> None:
        await trio.sleep(10)
        async for message in ws:
            received.append(message)

    served = await serve(handler, ws_ping_interval=None, ws_max_queue=2)
    client = await served.open()
    for n in range(8):
        await client.send(ws_frame(TEXT, f"m{n}".encode()))
    await trio.sleep(5)
    assert not served.settled()
    await trio.sleep(10)
    assert served.settled()
    assert received == [f"m{n}" for n in range(8)]


async def test_a_handler_returning_while_a_task_outside_it_watches_closes_cleanly(serve, nursery, autojump_clock):
    """The watcher is a task the handler does not wait for; the handler's return closes with
    1000, which starts the reader again in the upgrade's nursery at once (after the handler, no
    task could start there), and the watcher is told the WebSocket ended."""
    outcomes: list[BaseException | None] = []

    async def receive_outside(ws: WebSocket) -> None:
        try:
            await ws.receive()
        except ConnectionClosed as closed:
            outcomes.append(closed)

    async def handler(ws: WebSocket) -> None:
        nursery.start_soon(receive_outside, ws)
        await trio.sleep(10)
        assert ws._session.settled

    served = await serve(handler, ws_ping_interval=None)
    client = await served.open()
    close = await read_frame(client)
    assert close.opcode == CLOSE and close.close_code == 1000
    await client.send(ws_close_frame(1000))
    assert await client.read_to_eof() == b""
    await trio.testing.wait_all_tasks_blocked()
    assert [type(outcome) for outcome in outcomes] == [ConnectionClosed]
