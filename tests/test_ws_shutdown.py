"""Graceful shutdown reaches open WebSockets: each gets close 1001 ("going away") and up to
``ws_close_timeout`` to finish the handshake, and the server's exit never waits past its
``graceful_timeout``. In process under the MockClock; the command line's SIGTERM is in
test_cli_websocket.py."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from conftest import CLOSE, RawClient, open_raw_websocket, read_frame, websockets_client, ws_close_frame
from test_server import MemoryListener
from websockets.exceptions import ConnectionClosedOK

from trio_httpchannel import HTTPChannel, Response, Server
from trio_httpchannel.asgi import ASGIHandler
from trio_httpchannel.websocket import CloseReason, WebSocketRequest

SETTINGS = {"ws_ping_interval": None, "ws_close_timeout": 4.0}
HANG = 100
"""MockClock seconds after which a test counts as hung (a WebSocket that never closes)."""


async def http_handler(request: Any) -> Response:
    return Response(200)


class Echo:
    """An echo handler that records why each of its WebSockets ended."""

    def __init__(self) -> None:
        self.closed: list[CloseReason | None] = []

    async def __call__(self, request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send(message)
        self.closed.append(ws.closed)


class Served:
    """One channel over memory streams: ``connect()`` gives a client, ``ended`` is set when
    every connection the test opened is over."""

    def __init__(self, nursery: trio.Nursery, handler: Any, **settings: Any) -> None:
        self.channel = HTTPChannel(http_handler, websocket_handler=handler, **{**SETTINGS, **settings})
        self.nursery = nursery
        self.running = 0
        self.ended = trio.Event()

    async def connect(self) -> RawClient:
        client, server = trio.testing.memory_stream_pair()
        self.running += 1
        self.nursery.start_soon(self._serve, server)
        return RawClient(client)

    async def _serve(self, stream: trio.abc.Stream) -> None:
        await self.channel(stream)
        self.running -= 1
        if not self.running:
            self.ended.set()


async def test_shutdown_closes_an_open_websocket_with_1001(nursery, autojump_clock):
    with trio.fail_after(HANG):
        echo = Echo()
        served = Served(nursery, echo)
        async with websockets_client(await served.connect()) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            served.channel.shutdown()
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (1001, "server shutting down")
        await served.ended.wait()
        assert echo.closed == [CloseReason(1001, "server shutting down")]
        assert served.channel.connection_count == 0


async def test_an_open_websocket_counts_as_a_connection_being_served(nursery, autojump_clock):
    with trio.fail_after(HANG):
        served = Served(nursery, Echo())
        async with websockets_client(await served.connect()) as ws:
            await ws.send("open")
            assert await ws.recv() == "open"
            assert served.channel.connection_count == 1
        await served.ended.wait()
        assert served.channel.connection_count == 0


async def test_every_open_websocket_gets_the_1001(nursery, autojump_clock):
    with trio.fail_after(HANG):
        served = Served(nursery, Echo())
        clients = [await served.connect() for _ in range(3)]
        for client in clients:
            await open_raw_websocket(client)
        await trio.testing.wait_all_tasks_blocked()
        served.channel.shutdown()
        for client in clients:
            assert (await read_frame(client)).close_code == 1001
            await client.send(ws_close_frame(1001))
            assert await client.read_to_eof() == b""
        await served.ended.wait()


async def test_a_client_ignoring_the_1001_is_closed_after_the_close_timeout(nursery, autojump_clock):
    with trio.fail_after(HANG):
        served = Served(nursery, Echo())
        client = await served.connect()
        await open_raw_websocket(client)
        await trio.testing.wait_all_tasks_blocked()
        stopped_at = trio.current_time()
        served.channel.shutdown()
        assert (await read_frame(client)).close_code == 1001
        assert await client.read_to_eof() == b""
        assert trio.current_time() - stopped_at == pytest.approx(4.0)
        await served.ended.wait()


async def test_a_websocket_accepted_after_the_shutdown_began_is_closed_with_1001_at_once(nursery, autojump_clock):
    with trio.fail_after(HANG):
        accept = trio.Event()

        async def slow_to_accept(request: WebSocketRequest) -> None:
            await accept.wait()
            ws = await request.accept()
            async for _ in ws:
                pass

        served = Served(nursery, slow_to_accept)
        client = await served.connect()
        await client.send(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await trio.testing.wait_all_tasks_blocked()
        served.channel.shutdown()
        accept.set()
        assert (await client.read_head()).status == 101
        assert (await read_frame(client)).close_code == 1001


async def test_a_closing_websocket_keeps_its_own_close_code_at_shutdown(nursery, autojump_clock):
    with trio.fail_after(HANG):

        async def closes_with_4000(request: WebSocketRequest) -> None:
            ws = await request.accept()
            await ws.close(4000, "done")

        served = Served(nursery, closes_with_4000)
        client = await served.connect()
        await open_raw_websocket(client)
        assert (await read_frame(client)).close_code == 4000
        served.channel.shutdown()
        await client.send(ws_close_frame(4000))
        assert await client.read_to_eof() == b""


async def test_an_asgi_app_is_told_1001_in_its_disconnect(nursery, autojump_clock):
    with trio.fail_after(HANG):
        disconnects: list[dict[str, Any]] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            while (message := await receive())["type"] != "websocket.disconnect":
                pass
            disconnects.append(message)

        served = Served(nursery, ASGIHandler(app).websocket_handler)
        async with websockets_client(await served.connect()) as ws:
            served.channel.shutdown()
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
        await served.ended.wait()
        assert disconnects == [{"type": "websocket.disconnect", "code": 1001, "reason": "server shutting down"}]


async def run_server(nursery: trio.Nursery, server: Server, listener: MemoryListener) -> trio.Event:
    """Start ``server`` on ``listener``; the event is set when serve_listeners returns."""
    done = trio.Event()

    async def run() -> None:
        await server.serve_listeners([listener])
        done.set()

    nursery.start_soon(run)
    await trio.testing.wait_all_tasks_blocked()
    return done


async def test_server_exit_waits_for_the_close_handshakes_not_for_the_graceful_timeout(nursery, autojump_clock, caplog):
    with trio.fail_after(HANG):
        listener = MemoryListener()
        server = Server(HTTPChannel(http_handler, websocket_handler=Echo(), **SETTINGS), graceful_timeout=600)
        done = await run_server(nursery, server, listener)
        answering, silent = await listener.connect(), await listener.connect()
        for client in (answering, silent):
            await open_raw_websocket(client)
        await trio.testing.wait_all_tasks_blocked()
        stopped_at = trio.current_time()
        server.shutdown()
        assert (await read_frame(answering)).close_code == 1001
        await answering.send(ws_close_frame(1001))
        assert (await read_frame(silent)).close_code == 1001
        await done.wait()
        assert trio.current_time() - stopped_at == pytest.approx(4.0)
        assert await answering.read_to_eof() == await silent.read_to_eof() == b""
        assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_the_graceful_timeout_bounds_a_close_handshake_that_would_take_longer(nursery, autojump_clock):
    with trio.fail_after(HANG):
        listener = MemoryListener()
        channel = HTTPChannel(http_handler, websocket_handler=Echo(), ws_ping_interval=None, ws_close_timeout=60)
        server = Server(channel, graceful_timeout=3)
        done = await run_server(nursery, server, listener)
        client = await listener.connect()
        await open_raw_websocket(client)
        await trio.testing.wait_all_tasks_blocked()
        stopped_at = trio.current_time()
        server.shutdown()
        frame = await read_frame(client)
        assert (frame.opcode, frame.close_code) == (CLOSE, 1001)
        await done.wait()
        assert trio.current_time() - stopped_at == pytest.approx(3)
        assert await client.read_to_eof() == b""
