"""The seam between HTTP/1.1 and WebSocket: where the channel stops parsing HTTP, what comes
before and after the upgrade request, and handshakes refused on the wire (raw bytes, both over a
real socket and over memory streams)."""

from __future__ import annotations

from typing import Any

from conftest import CLOSE, TEXT, get, open_raw_websocket, read_frame, ws_echo, ws_frame, ws_upgrade

from trio_httpchannel import Request, Response
from trio_httpchannel.websocket import WebSocketRequest


async def hello(request: Request) -> Response:
    body = await request.read()
    return Response(200, [("content-type", "text/plain")], f"{request.method} {request.target} {len(body)}".encode())


async def test_requests_pipelined_before_the_upgrade_are_answered_first(serve):
    connect = await serve(hello, websocket_handler=ws_echo, ws_ping_interval=None)
    client = await connect()
    post = b"POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc"
    await client.send(get("/one") + post + ws_upgrade("/ws"))
    assert (await client.read_response()).body == b"GET /one 0"
    assert (await client.read_response()).body == b"POST /form 3"
    assert (await client.read_head()).status == 101
    await client.send(ws_frame(TEXT, b"now a websocket"))
    assert await read_frame(client) == (True, 0, TEXT, b"now a websocket")


async def test_nothing_after_the_upgrade_request_is_parsed_as_http(serve):
    calls: list[str] = []

    async def counting(request: Request) -> Response:
        calls.append(request.target)
        return Response(200)

    connect = await serve(counting, websocket_handler=ws_echo, ws_ping_interval=None)
    client = await connect()
    await client.send(ws_upgrade("/ws") + get("/smuggled"))
    assert (await client.read_head()).status == 101
    close = await read_frame(client)
    assert (close.opcode, close.close_code) == (CLOSE, 1002)
    assert await client.read_to_eof() == b""
    assert calls == []


async def test_without_a_websocket_handler_an_upgrade_is_a_plain_request(serve):
    connect = await serve(hello)
    client = await connect()
    await client.send(ws_upgrade("/ws") + get("/after"))
    assert (await client.read_response()).body == b"GET /ws 0"
    assert (await client.read_response()).body == b"GET /after 0"


async def test_an_upgrade_field_in_http_1_0_is_ignored(serve):
    connect = await serve(hello, websocket_handler=ws_echo)
    client = await connect()
    await client.send(ws_upgrade("/ws").replace(b"HTTP/1.1", b"HTTP/1.0", 1))
    response = await client.read_response()
    assert (response.status, response.body) == (200, b"GET /ws 0")


async def test_another_version_is_refused_with_426_and_the_connection_closes(serve):
    called: list[Any] = []

    async def handler(request: WebSocketRequest) -> None:
        called.append(request)

    connect = await serve(hello, websocket_handler=handler)
    client = await connect()
    await client.send(ws_upgrade(version="8"))
    response = await client.read_response()
    assert (response.status, response.header("sec-websocket-version")) == (426, "13")
    assert response.header("connection") == "close"
    assert await client.read_to_eof() == b""
    assert called == []


async def test_a_malformed_handshake_is_refused_with_400(serve):
    connect = await serve(hello, websocket_handler=ws_echo)
    client = await connect()
    await client.send(ws_upgrade(key="short"))
    response = await client.read_response()
    assert response.status == 400 and b"Sec-WebSocket-Key" in response.body
    assert await client.read_to_eof() == b""


async def test_a_refusal_is_not_cut_by_bytes_the_client_sent_after_its_handshake(serve_tcp):
    connect = await serve_tcp(hello, websocket_handler=ws_echo)
    client = await connect()
    await client.send(ws_upgrade(version="7") + ws_frame(TEXT, b"x" * 200_000))
    response = await client.read_response()
    assert response.status == 426 and response.body.startswith(b"426 Upgrade Required")


async def test_a_response_closing_the_connection_cancels_the_upgrade_behind_it(serve):
    called: list[Any] = []

    async def handler(request: WebSocketRequest) -> None:
        called.append(request)

    connect = await serve(hello, websocket_handler=handler)
    client = await connect()
    await client.send(get("/last", "Connection: close") + ws_upgrade())
    response = await client.read_response()
    assert (response.body, response.header("connection")) == (b"GET /last 0", "close")
    assert await client.read_to_eof() == b""
    assert called == []


async def test_the_tcp_connection_closes_after_the_close_handshake(serve):
    connect = await serve(hello, websocket_handler=ws_echo, ws_ping_interval=None)
    client = await connect()
    await open_raw_websocket(client)
    await client.send(ws_frame(CLOSE, b"\x03\xe8"))
    assert (await read_frame(client)).close_code == 1000
    assert await client.read_to_eof() == b""


async def test_the_websocket_request_carries_the_http_requests_parts(serve_tcp):
    seen: list[tuple[Any, ...]] = []

    async def handler(request: WebSocketRequest) -> None:
        seen.append((request.path, request.query, request.scheme, request.headers["x-token"], request.client[0]))
        await request.reject(Response(403))

    connect = await serve_tcp(hello, websocket_handler=handler)
    client = await connect()
    await client.send(ws_upgrade("/room?id=7", "X-Token: secret"))
    assert (await client.read_response()).status == 403
    assert seen == [("/room", "id=7", "ws", "secret", "127.0.0.1")]


async def test_a_lone_upgrade_needs_no_earlier_response(serve):
    connect = await serve(hello, websocket_handler=ws_echo, ws_ping_interval=None)
    client = await connect()
    await open_raw_websocket(client)
    await client.send(ws_frame(TEXT, b"hi"))
    assert await read_frame(client) == (True, 0, TEXT, b"hi")
