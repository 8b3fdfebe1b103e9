"""WebSocket happy paths over a real loopback socket, checked by the websockets package's own
client (an independent protocol implementation): messages, subprotocols, compression, large
fragmented messages, pings and both sides' close."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from conftest import (
    CLOSE,
    GUARD,
    PONG,
    TEXT,
    open_raw_websocket,
    read_frame,
    websockets_client,
    ws_close_frame,
    ws_echo,
    ws_frame,
    ws_upgrade,
)
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.extensions.permessage_deflate import PerMessageDeflate as ClientDeflate

from trio_httpchannel import Response, Settings
from trio_httpchannel.websocket import CloseReason, ConnectionClosed, WebSocketRequest
from trio_httpchannel.websocket._protocol import WebSocketProtocol
from trio_httpchannel.websocket._session import Session

WebSocketHandler = Callable[[WebSocketRequest], Awaitable[None]]


async def http_handler(request: Any) -> Response:
    return Response(200, [("content-type", "text/plain")], b"plain http")


@pytest.fixture
def serve_ws(serve_tcp: Any) -> Callable[..., Awaitable[Any]]:
    """``connect = await serve_ws(websocket_handler, **settings)`` over a real socket."""

    async def start(handler: WebSocketHandler, **settings: Any) -> Any:
        settings.setdefault("ws_ping_interval", None)
        return await serve_tcp(http_handler, websocket_handler=handler, **settings)

    return start


def recording(closes: list[CloseReason | None], done: trio.Event) -> WebSocketHandler:
    """An echo handler that records why its WebSocket ended."""

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send(message)
        closes.append(ws.closed)
        done.set()

    return handler


async def test_text_and_binary_messages_are_echoed(serve_ws):
    connect = await serve_ws(ws_echo)
    async with websockets_client(await connect(), "/echo") as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\xffbytes")
        assert await ws.recv() == b"\x00\xffbytes"


async def test_the_handler_picks_a_subprotocol_the_client_offered(serve_ws):
    offered: list[tuple[str, ...]] = []

    async def handler(request: WebSocketRequest) -> None:
        offered.append(request.subprotocols)
        ws = await request.accept(subprotocol="chat.v1", headers=[("x-served-by", "test")])
        await ws.send(ws.subprotocol or "")

    connect = await serve_ws(handler)
    async with websockets_client(await connect(), subprotocols=["chat.v2", "chat.v1"]) as ws:
        assert ws.subprotocol == "chat.v1"
        assert ws.response.headers["x-served-by"] == "test"
        assert await ws.recv() == "chat.v1"
    assert offered == [("chat.v2", "chat.v1")]


async def test_permessage_deflate_is_negotiated_and_compressed_messages_round_trip(serve_ws):
    connect = await serve_ws(ws_echo)
    async with websockets_client(await connect()) as ws:
        assert [type(extension) for extension in ws.protocol.extensions] == [ClientDeflate]
        for message in ["compressible " * 1000, b"\x01\x02" * 5000, "second message, same context"]:
            await ws.send(message)
            assert await ws.recv() == message


async def test_permessage_deflate_is_declined_when_disabled(serve_ws):
    connect = await serve_ws(ws_echo, ws_per_message_deflate=False)
    async with websockets_client(await connect()) as ws:
        assert ws.protocol.extensions == []
        await ws.send("still works")
        assert await ws.recv() == "still works"


async def test_a_large_fragmented_message_is_reassembled(serve_ws):
    fragments = [bytes([n]) * 65536 for n in range(128)]
    connect = await serve_ws(ws_echo)
    async with websockets_client(await connect(), compression=None, max_size=None) as ws:
        await ws.send(fragments)
        assert await ws.recv() == b"".join(fragments)


async def test_the_clients_close_code_and_reason_reach_the_handler(serve_ws):
    closes: list[CloseReason | None] = []
    done = trio.Event()
    connect = await serve_ws(recording(closes, done))
    async with websockets_client(await connect()) as ws:
        await ws.aclose(4001, "bye")
        assert (ws.close_code, ws.close_reason) == (4001, "bye")
    await done.wait()
    assert closes == [CloseReason(4001, "bye")]


async def test_a_close_without_a_code_reaches_the_handler_as_1005(serve_ws):
    closes: list[CloseReason | None] = []
    done = trio.Event()
    connect = await serve_ws(recording(closes, done))
    client = await connect()
    await open_raw_websocket(client)
    await client.send(ws_close_frame())
    assert await read_frame(client) == (True, 0, CLOSE, b"")
    await done.wait()
    assert closes == [CloseReason(1005)]


async def test_a_dropped_connection_reaches_the_handler_as_1006(serve_ws):
    closes: list[CloseReason | None] = []
    done = trio.Event()
    connect = await serve_ws(recording(closes, done))
    client = await connect()
    await open_raw_websocket(client)
    await client.aclose()
    await done.wait()
    assert closes == [CloseReason(1006)]


async def test_the_server_closes_with_the_handlers_code_and_reason(serve_ws):
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send("last words")
        await ws.close(4000, "done")
        assert ws.closed == CloseReason(4000, "done")

    connect = await serve_ws(handler)
    async with websockets_client(await connect()) as ws:
        assert await ws.recv() == "last words"
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4000, "done")


async def test_a_handler_returning_closes_with_1000(serve_ws):
    async def handler(request: WebSocketRequest) -> None:
        await request.accept()

    connect = await serve_ws(handler)
    async with websockets_client(await connect()) as ws:
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        assert ws.close_code == 1000


async def test_a_handler_failing_after_accepting_closes_with_1011_and_is_logged(serve_ws, caplog):
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.receive()
        raise RuntimeError("boom")

    connect = await serve_ws(handler)
    async with websockets_client(await connect()) as ws:
        await ws.send("trigger")
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert ws.close_code == 1011
    assert [record.exc_info[1].args for record in caplog.records if record.exc_info] == [("boom",)]


async def test_a_handler_failing_before_accepting_answers_500(serve_ws, caplog):
    async def handler(request: WebSocketRequest) -> None:
        raise RuntimeError("boom")

    connect = await serve_ws(handler)
    with pytest.raises(InvalidStatus) as refused:
        async with websockets_client(await connect()):
            pass
    assert refused.value.response.status_code == 500
    assert [record.levelno for record in caplog.records] == [logging.ERROR]


async def test_a_handler_returning_without_deciding_answers_500_and_is_logged(serve_ws, caplog):
    async def handler(request: WebSocketRequest) -> None:
        pass

    connect = await serve_ws(handler)
    client = await connect()
    await client.send(ws_upgrade())
    response = await client.read_response()
    assert (response.status, response.header("connection")) == (500, "close")
    assert await client.read_to_eof() == b""
    assert "without accepting or rejecting" in caplog.text


async def test_a_rejection_is_sent_as_the_handlers_response(serve_ws):
    async def handler(request: WebSocketRequest) -> None:
        await request.reject(Response(404, [("x-why", "nothing here")], b"no such room"))

    connect = await serve_ws(handler)
    with pytest.raises(InvalidStatus) as refused:
        async with websockets_client(await connect(), "/room/9"):
            pass
    response = refused.value.response
    assert (response.status_code, response.headers["x-why"], response.body) == (404, "nothing here", b"no such room")


async def test_a_ping_from_the_client_is_answered(serve_ws):
    connect = await serve_ws(ws_echo)
    async with websockets_client(await connect()) as ws:
        pong = await ws.ping(b"are you there")
        await pong.wait()


async def test_a_handlers_ping_returns_when_the_client_answers(serve_ws):
    pinged = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.ping(b"hello?")
        pinged.set()
        await ws.receive()

    connect = await serve_ws(handler)
    async with websockets_client(await connect()):
        await pinged.wait()


async def test_messages_sent_before_the_close_are_received_then_the_close(serve_ws):
    received: list[Any] = []
    ready = trio.Event()
    done = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ready.wait()
        async for message in ws:
            received.append(message)
        received.append(ws.closed)
        done.set()

    connect = await serve_ws(handler)
    async with websockets_client(await connect()) as ws:
        for n in range(3):
            await ws.send(f"message {n}")
        await ws.aclose(1001, "going")
        ready.set()
    await done.wait()
    assert received == ["message 0", "message 1", "message 2", CloseReason(1001, "going")]


async def test_send_after_the_close_raises_connection_closed_an_os_error(serve_ws, caplog):
    raised: list[BaseException] = []
    done = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        with pytest.raises(ConnectionClosed):
            await ws.receive()
        try:
            await ws.send("anyone?")
        except OSError as error:
            raised.append(error)
        done.set()

    connect = await serve_ws(handler)
    async with websockets_client(await connect()) as ws:
        await ws.aclose(1000)
    await done.wait()
    assert isinstance(raised[0], ConnectionClosed) and raised[0].reason == CloseReason(1000)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_a_handler_letting_connection_closed_propagate_is_not_logged_as_failing(serve_ws, caplog):
    done = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.receive()
        finally:
            done.set()

    connect = await serve_ws(handler)
    async with websockets_client(await connect()) as ws:
        await ws.aclose()
    await done.wait()
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_frames_sent_with_the_handshake_are_the_first_messages(serve_ws):
    connect = await serve_ws(ws_echo)
    client = await connect()
    await client.send(ws_upgrade() + ws_frame(TEXT, b"eager") + ws_frame(TEXT, b"client"))
    assert (await client.read_head()).status == 101
    assert [await read_frame(client) for _ in range(2)] == [(True, 0, TEXT, b"eager"), (True, 0, TEXT, b"client")]


async def test_one_websocket_does_not_block_another(serve_ws):
    connect = await serve_ws(ws_echo)
    async with websockets_client(await connect()) as first, websockets_client(await connect()) as second:
        await first.send("one")
        await second.send("two")
        assert (await second.recv(), await first.recv()) == ("two", "one")


def flood_pongs(port: int, stop: threading.Event) -> None:
    """A client in a thread of its own (so it keeps sending whatever the server's loop does) that
    opens a WebSocket and writes unsolicited pongs, which need no answer, until ``stop``."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(ws_upgrade())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        pongs = ws_frame(PONG, b"p" * 125) * 64
        while not stop.is_set():
            sock.sendall(pongs)


async def test_a_client_flooding_pongs_does_not_hold_up_another_websocket(serve_ws):
    connect = await serve_ws(ws_echo)
    stop = threading.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, flood_pongs, connect.args[0], stop)
        try:
            with trio.fail_after(GUARD):
                async with websockets_client(await connect()) as ws:
                    for n in range(5):
                        await ws.send(f"echo {n}")
                        assert await ws.recv() == f"echo {n}"
        finally:
            stop.set()


async def test_a_task_sending_in_a_loop_lets_other_tasks_run():
    """Over a socket pair that takes every frame at once, so no send ever has to wait: without
    the sends' scheduler passes the other task would not run at all (trio orders each batch of
    tasks at random, so how often it runs varies by one or two)."""
    server_socket, client_socket = trio.socket.socketpair()
    settings = Settings(ws_ping_interval=None)
    session = Session(trio.SocketStream(server_socket), WebSocketProtocol([], settings.ws_max_size), settings)
    others_ran = 0

    async def other() -> None:
        nonlocal others_ran
        while True:
            others_ran += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await trio.lowlevel.checkpoint()
        before = others_ran
        for _ in range(10):
            await session.send(b"x")
        assert others_ran - before >= 5
        nursery.cancel_scope.cancel()
    client_socket.close()


async def test_a_session_made_without_a_nursery_runs_its_writer_in_one_of_its_own(autojump_clock):
    """Over a memory stream, which takes nothing at once: every frame goes through the writer."""
    client, server = trio.testing.memory_stream_pair()
    settings = Settings(ws_ping_interval=None)
    session = Session(server, WebSocketProtocol([], settings.ws_max_size), settings)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.run)
        await client.send_all(ws_frame(TEXT, b"hello"))
        await session.send(await session.receive())
        await session.close(1000, wait=False)
        await client.send_all(ws_close_frame(1000))
        frames = b""
        while data := await client.receive_some():
            frames += data
    assert frames == b"\x81\x05hello" + b"\x88\x02\x03\xe8"
    assert session.close_written
