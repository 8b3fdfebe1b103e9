"""The ``on_response`` hook for upgrade requests: one record each, a 101 when the WebSocket has
ended (its bytes are every byte the connection wrote), a refusal when it is written. Over a real
socket, with raw frames written by the test."""

from __future__ import annotations

import logging
from typing import Any

import trio
import trio.testing
from conftest import TEXT, RawClient, ws_close_frame, ws_frame, ws_upgrade
from test_access_log import Log, logged  # noqa: F401 (logged is a fixture)

from trio_httpchannel import Response
from trio_httpchannel.websocket import WebSocketRequest

SETTINGS = {"ws_ping_interval": None, "ws_close_timeout": 5.0, "linger_timeout": 5.0}


async def page(request: Any) -> Response:
    return Response(200, [], b"a page")


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send(message)


async def not_here(request: WebSocketRequest) -> None:
    await request.reject(Response(404, [], b"no WebSocket here"))


async def everything_after(client: RawClient, data: bytes) -> bytes:
    """Send ``data``, close our side (so that a lingering close ends at once) and read until
    the server closes."""
    await client.send(data)
    await client.send_eof()
    with trio.fail_after(60):
        return await client.read_to_eof()


async def test_a_websocket_is_one_101_record_counting_every_byte_written(logged):
    log, connect = await logged(page, websocket_handler=echo, **SETTINGS)
    client = await connect()
    received = await everything_after(client, ws_upgrade("/chat?room=1") + ws_frame(TEXT, b"hi") + ws_close_frame(1000))
    (record,) = await log.wait_for(1)
    assert received.startswith(b"HTTP/1.1 101 ")
    assert (record.status, record.sent, record.complete) == (101, len(received), True)
    assert record.request is not None and record.request.target == "/chat?room=1"
    assert record.client == record.request.client


async def test_the_101_is_recorded_when_the_websocket_ends_not_when_it_opens(logged):
    log, connect = await logged(page, websocket_handler=echo, **SETTINGS)
    client = await connect()
    await client.send(ws_upgrade() + ws_frame(TEXT, b"hi"))
    with trio.fail_after(60):
        await client.read_until(b"hi")
    await trio.testing.wait_all_tasks_blocked()
    assert log.records == []
    await client.send(ws_close_frame(1000))
    await client.send_eof()
    assert [record.status for record in await log.wait_for(1)] == [101]


async def test_a_websocket_whose_client_vanished_is_recorded_cut_short(logged):
    log, connect = await logged(page, websocket_handler=echo, **SETTINGS)
    client = await connect()
    await client.send(ws_upgrade())
    with trio.fail_after(60):
        await client.read_head()
    await client.aclose()
    (record,) = await log.wait_for(1)
    assert (record.status, record.complete) == (101, False)


async def test_a_refusal_by_the_handler_is_recorded_with_its_status(logged):
    log, connect = await logged(page, websocket_handler=not_here, **SETTINGS)
    client = await connect()
    received = await everything_after(client, ws_upgrade("/nowhere"))
    (record,) = await log.wait_for(1)
    assert (record.status, record.sent, record.complete) == (404, len(received), True)
    assert record.request is not None and record.request.target == "/nowhere"


async def test_a_malformed_handshake_is_recorded_with_its_refusal(logged):
    log, connect = await logged(page, websocket_handler=echo, **SETTINGS)
    client = await connect()
    received = await everything_after(client, ws_upgrade(version="8"))
    (record,) = await log.wait_for(1)
    assert (record.status, record.sent, record.complete) == (426, len(received), True)


async def test_requests_pipelined_before_the_upgrade_get_their_own_records_first(logged):
    log, connect = await logged(page, websocket_handler=echo, **SETTINGS)
    client = await connect()
    get = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
    await everything_after(client, get + ws_upgrade("/ws") + ws_close_frame(1000))
    records = await log.wait_for(2)
    assert [(record.status, record.request.target) for record in records if record.request] == [
        (200, "/first"),
        (101, "/ws"),
    ]


async def test_a_failing_hook_is_logged_once_and_the_websocket_is_unharmed(serve_tcp, caplog):
    def failing(record: Any) -> None:
        raise RuntimeError("the log is full")

    connect = await serve_tcp(page, websocket_handler=echo, on_response=failing, **SETTINGS)
    received = await everything_after(await connect(), ws_upgrade() + ws_frame(TEXT, b"hi") + ws_close_frame(1000))
    assert received.endswith(b"\x88\x02\x03\xe8")
    await trio.testing.wait_all_tasks_blocked()
    errors = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.getMessage().split(" on ")[0] for record in errors] == ["the on_response hook failed"]
