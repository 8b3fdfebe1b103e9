"""The native WebSocket API's own promises: cancellation leaves the connection whole, each request
is decided once, and misuse is a clear exception in the handler."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from conftest import TEXT, http_handler, open_raw_websocket, read_frame, ws_close_frame, ws_frame, ws_upgrade

from trio_httpchannel import Response
from trio_httpchannel.websocket import CloseReason, WebSocketRequest


async def serve_raw(serve_memory: Any, handler: Any) -> Any:
    connect = await serve_memory(http_handler, websocket_handler=handler, ws_ping_interval=None)
    client = await connect()
    await open_raw_websocket(client)
    return client


async def test_a_cancelled_receive_leaves_the_websocket_usable(serve_memory, autojump_clock):
    async def impatient(request: WebSocketRequest) -> None:
        ws = await request.accept()
        with trio.move_on_after(5):
            await ws.receive()
        await ws.send("gave up waiting")
        await ws.send(await ws.receive())

    client = await serve_raw(serve_memory, impatient)
    assert await read_frame(client) == (True, 0, TEXT, b"gave up waiting")
    await client.send(ws_frame(TEXT, b"here now"))
    assert await read_frame(client) == (True, 0, TEXT, b"here now")


async def test_a_send_cancelled_behind_a_slow_client_sends_nothing_and_leaves_the_stream_whole(
    serve_lockstep, autojump_clock
):
    outcomes: list[str] = []

    async def talker(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send(b"a" * 1000)
        await ws.send(b"b" * 1000)
        with trio.move_on_after(5) as waiting:
            await ws.send(b"never")
        outcomes.append("cancelled" if waiting.cancelled_caught else "sent")
        await ws.send(b"after")

    connect = await serve_lockstep(http_handler, websocket_handler=talker, ws_ping_interval=None)
    client = await connect()
    await open_raw_websocket(client)
    await trio.sleep(10)
    assert [(await read_frame(client)).payload for _ in range(3)] == [b"a" * 1000, b"b" * 1000, b"after"]
    assert outcomes == ["cancelled"]


async def test_close_in_a_cancelled_scope_still_sends_the_close_frame(serve_memory, autojump_clock):
    async def cancelled_closer(request: WebSocketRequest) -> None:
        ws = await request.accept()
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.close(4000, "cancelled")

    client = await serve_raw(serve_memory, cancelled_closer)
    close = await read_frame(client)
    assert (close.close_code, close.close_reason) == (4000, "cancelled")


async def test_closing_a_websocket_that_has_ended_returns_at_once(serve_memory, autojump_clock):
    client_gone = trio.Event()
    closed_at: list[float] = []

    async def late_closer(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for _ in ws:
            pass
        await client_gone.wait()
        start = trio.current_time()
        await ws.close(1000)
        closed_at.append(trio.current_time() - start)

    client = await serve_raw(serve_memory, late_closer)
    await client.send(ws_close_frame(1000))
    assert (await read_frame(client)).close_code == 1000
    assert await client.read_to_eof() == b""
    await client.stream.aclose()
    await trio.testing.wait_all_tasks_blocked()
    client_gone.set()
    await trio.testing.wait_all_tasks_blocked()
    assert closed_at == [0.0]


async def test_async_iteration_ends_at_the_close(serve_memory, autojump_clock):
    seen: list[Any] = []

    async def collector(request: WebSocketRequest) -> None:
        ws = await request.accept()
        seen.append(ws.closed)
        seen.extend([message async for message in ws])
        seen.append(ws.closed)

    client = await serve_raw(serve_memory, collector)
    await client.send(ws_frame(TEXT, b"a") + ws_frame(TEXT, b"b") + ws_close_frame(1000, b"done"))
    assert (await read_frame(client)).close_code == 1000
    assert await client.read_to_eof() == b""
    assert seen == [None, "a", "b", CloseReason(1000, "done")]


async def test_a_request_is_decided_once(serve_memory):
    errors: list[BaseException] = []
    done = trio.Event()

    async def twice(request: WebSocketRequest) -> None:
        await request.reject(Response(403))
        for attempt in (request.accept(), request.reject(Response(404))):
            try:
                await attempt
            except RuntimeError as error:
                errors.append(error)
        done.set()

    connect = await serve_memory(http_handler, websocket_handler=twice)
    client = await connect()
    await client.send(ws_upgrade())
    assert (await client.read_response()).status == 403
    await done.wait()
    assert [str(error) for error in errors] == ["this WebSocket request was already rejected"] * 2


async def test_a_rejection_with_a_streamed_body_is_a_type_error(serve_memory, caplog):
    async def stream() -> Any:
        yield b"no"

    async def streaming(request: WebSocketRequest) -> None:
        await request.reject(Response(403, [], stream()))

    connect = await serve_memory(http_handler, websocket_handler=streaming)
    client = await connect()
    await client.send(ws_upgrade())
    assert (await client.read_response()).status == 500
    assert "bytes body, not a stream" in caplog.text


@pytest.mark.parametrize(
    "misuse, error",
    [
        (lambda ws: ws.close(1005), ValueError),
        (lambda ws: ws.close(70000), ValueError),
        (lambda ws: ws.ping(b"x" * 126), ValueError),
        (lambda ws: ws.send(42), TypeError),
    ],
    ids=["reserved-close-code", "close-code-out-of-range", "long-ping", "not-a-message"],
)
async def test_misuse_is_a_clear_exception_and_the_websocket_stays_open(serve_memory, autojump_clock, misuse, error):
    raised: list[type[BaseException]] = []

    async def misuser(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await misuse(ws)
        except (ValueError, TypeError) as caught:
            raised.append(type(caught))
        await ws.send("still open")

    client = await serve_raw(serve_memory, misuser)
    assert await read_frame(client) == (True, 0, TEXT, b"still open")
    assert raised == [error]
