"""WebSockets over HTTP/2 (RFC 8441): an extended CONNECT becomes a WebSocket on its stream; its
handshake, the answers to bad input, and the other streams of the connection going on.

No independent client program speaks RFC 8441 here (curl and the websockets package open
WebSockets over HTTP/1.1 only), so the client is made of libraries that are not our code: h2's
client side for HTTP/2 (it also checks that every frame the server sends is valid) and wsproto's
handshake-free frame layer for the WebSocket (``_h2_ws.py``); raw frames built with hyperframe
and hpack for what h2 refuses to send. All over a real loopback socket, one over TLS."""

from __future__ import annotations

import functools
import logging
import ssl
from typing import Any

import pytest
import trio
import trustme
from _apps import http_handler, ws_echo
from _h2 import H2Client
from _h2_ws import H2WebSocket, extended_connect
from conftest import ws_close_frame, ws_frame
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame, RstStreamFrame, SettingsFrame
from wsproto.events import BytesMessage, CloseConnection, TextMessage

from trio_httpchannel import HTTPChannel, Response
from trio_httpchannel.asgi import ASGIHandler
from trio_httpchannel.http2 import ALPN_PROTOCOLS
from trio_httpchannel.websocket import ConnectionClosed, WebSocketRequest

GET = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "example.com")]
TEXT = 0x1


class CloseWatcher:
    """A WebSocket handler that accepts, waits for a message and records the close code it
    gets instead; ``done`` is set then."""

    def __init__(self) -> None:
        self.closed: list[int] = []
        self.done = trio.Event()

    async def __call__(self, request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.receive()
        except ConnectionClosed as error:
            self.closed.append(error.reason.code)
            self.done.set()


async def test_settings_advertise_the_connect_protocol_with_a_websocket_handler(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    client = await server.connect()
    await client.ping()
    assert client.conn.remote_settings.enable_connect_protocol == 1


async def test_an_extended_connect_becomes_a_websocket_echoing_both_ways(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    client = await server.connect()
    ws = await H2WebSocket.open(client, "/chat")
    assert ws.response.status == 200
    assert ws.response.header("sec-websocket-accept") is None and ws.response.header("content-length") is None
    await ws.send(TextMessage("hello"))
    assert await ws.event() == TextMessage("hello")
    await ws.send(BytesMessage(b"\x00\x01"))
    event = await ws.event()
    assert isinstance(event, BytesMessage) and event.data == b"\x00\x01"


async def test_the_close_handshake_ends_the_stream_with_end_stream_both_ways(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    client = await server.connect()
    ws = await H2WebSocket.open(client)
    await ws.send(CloseConnection(1000, "bye"))
    event = await ws.event()
    assert isinstance(event, CloseConnection) and (event.code, event.reason) == (1000, "bye")
    response = await ws.until_stream_over()
    assert response.ended and response.reset is None
    await ws.end()
    assert (await client.get("/")).status == 200
    server.channel.shutdown()
    await client.until_terminated()  # the connection closes once every stream is over
    assert ws.resets() == []


async def test_the_handler_returning_closes_with_1000_and_ends_the_stream(serve_h2_tcp):
    async def once(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send(await ws.receive())

    server = await serve_h2_tcp(http_handler, websocket_handler=once)
    client = await server.connect()
    ws = await H2WebSocket.open(client)
    await ws.send(TextMessage("only"))
    events = await ws.events()
    while len(events) < 2:
        events += await ws.events()
    assert events[0] == TextMessage("only")
    assert isinstance(events[1], CloseConnection) and events[1].code == 1000
    await ws.send(CloseConnection(1000), end=True)
    response = await ws.until_stream_over()
    assert response.ended and response.reset is None


async def test_websockets_and_requests_share_one_connection(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    client = await server.connect()
    sockets = [await H2WebSocket.open(client, f"/{n}") for n in range(3)]
    for n, ws in enumerate(sockets):
        await ws.send(TextMessage(f"message {n}"))
    get = await client.request("/")
    for n, ws in reversed(list(enumerate(sockets))):
        assert await ws.event() == TextMessage(f"message {n}")
    assert (await client.response(get)).status == 200


async def test_the_asgi_scope_says_http_version_2_and_the_subprotocol_is_negotiated(serve_h2_tcp):
    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "json"})
        message = await receive()
        await send({"type": "websocket.send", "text": message["text"].upper()})
        assert (await receive())["type"] == "websocket.disconnect"

    server = await serve_h2_tcp(ASGIHandler(app))
    client = await server.connect()
    ws = await H2WebSocket.open(client, "/caf%C3%A9?q=1", ("sec-websocket-protocol", "chat, json"))
    assert (ws.response.status, ws.response.header("sec-websocket-protocol")) == (200, "json")
    await ws.send(TextMessage("shout"))
    assert await ws.event() == TextMessage("SHOUT")
    (scope,) = scopes
    assert (scope["type"], scope["http_version"], scope["scheme"]) == ("websocket", "2", "ws")
    assert (scope["path"], scope["query_string"], scope["subprotocols"]) == ("/café", b"q=1", ["chat", "json"])
    assert (b"host", b"example.com") in scope["headers"]


async def test_permessage_deflate_is_negotiated_as_over_http1(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    client = await server.connect()
    ws = await H2WebSocket.open(client, deflate=True)
    assert ws.response.header("sec-websocket-extensions") == "permessage-deflate"
    message = "compressible " * 1000
    await ws.send(TextMessage(message))
    assert await ws.event() == TextMessage(message)
    assert len(ws.response.body) < len(message) // 10


async def test_a_native_refusal_is_an_ordinary_response_and_the_connection_goes_on(serve_h2_tcp):
    async def refuse(request: WebSocketRequest) -> None:
        await request.reject(Response(403, [("x-why", "no")], b"go away"))

    server = await serve_h2_tcp(http_handler, websocket_handler=refuse)
    client = await server.connect()
    ws = await H2WebSocket.open(client)
    response = await ws.until_stream_over()
    assert (response.status, response.header("x-why"), bytes(response.body)) == (403, "no", b"go away")
    assert (await client.get("/")).status == 200


async def test_an_asgi_denial_response_is_an_ordinary_response(serve_h2_tcp):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401, "headers": [(b"x-a", b"b")]})
        await send({"type": "websocket.http.response.body", "body": b"login first"})

    server = await serve_h2_tcp(ASGIHandler(app))
    client = await server.connect()
    response = await (await H2WebSocket.open(client)).until_stream_over()
    assert (response.status, response.header("x-a"), bytes(response.body)) == (401, "b", b"login first")


async def test_another_websocket_version_is_answered_426_naming_13(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    client = await server.connect()
    response = await (await H2WebSocket.open(client, version="8")).until_stream_over()
    assert (response.status, response.header("sec-websocket-version")) == (426, "13")
    assert response.header("upgrade") is None


async def test_a_missing_websocket_version_is_answered_400(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    raw = await server.raw()
    await raw.handshake()
    fields = [field for field in extended_connect() if field[0] != "sec-websocket-version"]
    await raw.send_frames(raw.headers(1, fields, end_stream=False))
    assert (b":status", b"400") in raw.decode(await raw.until(HeadersFrame, 1))


async def test_an_extended_connect_for_another_protocol_is_answered_501(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    client = await server.connect()
    response = await (await H2WebSocket.open(client, protocol="connect-udp")).until_stream_over()
    assert response.status == 501
    assert (await client.get("/")).status == 200


async def test_a_plain_connect_is_answered_501_as_over_http1(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(raw.headers(1, [(":method", "CONNECT"), (":authority", "example.com:443")], end_stream=False))
    assert (b":status", b"501") in raw.decode(await raw.until(HeadersFrame, 1))


async def test_an_extended_connect_that_ends_its_stream_at_once_is_answered_400(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(raw.headers(1, extended_connect(), end_stream=True))
    assert (b":status", b"400") in raw.decode(await raw.until(HeadersFrame, 1))


@pytest.mark.parametrize("missing", [":path", ":scheme", ":authority"])
async def test_an_extended_connect_without_a_pseudo_header_is_reset_and_the_connection_goes_on(serve_h2_tcp, missing):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    raw = await server.raw()
    await raw.handshake()
    fields = [field for field in extended_connect() if field[0] != missing]
    await raw.send_frames(raw.headers(1, fields, end_stream=False))
    assert (await raw.until(RstStreamFrame, 1)).error_code == ErrorCodes.PROTOCOL_ERROR
    await raw.send_frames(raw.headers(3, GET))
    assert (b":status", b"200") in raw.decode(await raw.until(HeadersFrame, 3))


async def test_without_websockets_no_connect_protocol_is_advertised_and_an_extended_connect_is_malformed(
    serve_h2_tcp,
):
    server = await serve_h2_tcp(http_handler)
    raw = await server.raw()
    settings = SettingsFrame(0)
    await raw.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings.serialize())
    received = await raw.until(SettingsFrame)
    assert received.settings.get(SettingCodes.ENABLE_CONNECT_PROTOCOL, 0) == 0
    await raw.send_frames(raw.headers(1, extended_connect(), end_stream=False))
    assert (await raw.until(RstStreamFrame, 1)).error_code == ErrorCodes.PROTOCOL_ERROR
    await raw.send_frames(raw.headers(3, GET))
    assert (b":status", b"200") in raw.decode(await raw.until(HeadersFrame, 3))


async def test_data_after_the_close_is_ignored_then_refused_and_the_connection_goes_on(serve_h2_tcp):
    received: list[Any] = []
    done = trio.Event()

    async def record(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                received.append(await ws.receive())
        except ConnectionClosed as closed:
            received.append(closed.reason.code)
            done.set()

    server = await serve_h2_tcp(http_handler, websocket_handler=record)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(raw.headers(1, extended_connect(), end_stream=False))
    assert (b":status", b"200") in raw.decode(await raw.until(HeadersFrame, 1))
    after_close = DataFrame(1, ws_close_frame(1000) + ws_frame(TEXT, b"after the close"))
    await raw.send_frames(after_close)
    close = await raw.until(DataFrame, 1)
    assert close.data[:1] == b"\x88"
    end = await raw.until(DataFrame, 1) if "END_STREAM" not in close.flags else close
    assert "END_STREAM" in end.flags
    ended = DataFrame(1, b"")
    ended.flags.add("END_STREAM")
    await raw.send_frames(ended, DataFrame(1, b"after the end"))
    assert (await raw.until(RstStreamFrame, 1)).error_code == ErrorCodes.STREAM_CLOSED
    await raw.send_frames(raw.headers(3, GET))
    assert (b":status", b"200") in raw.decode(await raw.until(HeadersFrame, 3))
    await done.wait()
    assert received == [1000]


async def test_a_client_reset_is_a_lost_connection_to_the_app_and_other_streams_go_on(serve_h2_tcp, caplog):
    watcher = CloseWatcher()
    server = await serve_h2_tcp(http_handler, websocket_handler=watcher)
    client = await server.connect()
    ws = await H2WebSocket.open(client)
    client.conn.reset_stream(ws.stream_id, ErrorCodes.CANCEL)
    await client.flush()
    assert (await client.get("/")).status == 200
    await watcher.done.wait()
    assert watcher.closed == [1006]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_message_over_ws_max_size_closes_with_1009(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo, ws_max_size=100)
    client = await server.connect()
    ws = await H2WebSocket.open(client)
    await ws.send(BytesMessage(b"x" * 101))
    event = await ws.event()
    assert isinstance(event, CloseConnection) and event.code == 1009


async def test_the_access_log_records_the_websocket_as_200_once_it_ends(serve_h2_tcp):
    records: list[Any] = []
    ended = trio.Event()

    def record(entry: Any) -> None:
        records.append(entry)
        if entry.request.target == "/logged":
            ended.set()

    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo, on_response=record)
    client = await server.connect()
    assert (await client.get("/before")).status == 200
    ws = await H2WebSocket.open(client, "/logged")
    await ws.send(TextMessage("hi"))
    await ws.event()
    await ws.send(CloseConnection(1000), end=True)
    await ws.until_stream_over()
    await ended.wait()
    assert [(entry.request.target, entry.status, entry.complete) for entry in records] == [
        ("/before", 200, True),
        ("/logged", 200, True),
    ]
    assert records[1].sent > 0


async def test_over_tls_by_alpn_the_websocket_scheme_is_wss(nursery):
    """What browsers do: RFC 8441 over TLS, h2 picked by ALPN."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    server_context.set_alpn_protocols(ALPN_PROTOCOLS)

    async def who(request: WebSocketRequest) -> None:
        ws = await request.accept()
        tls = request.request.tls
        assert tls is not None
        await ws.send(f"{request.scheme} HTTP/{request.request.http_version} {tls.asgi()['tls_version']:#x}")

    channel = HTTPChannel(http_handler, websocket_handler=who, ws_ping_interval=None)
    serve = functools.partial(trio.serve_ssl_over_tcp, channel, 0, server_context, host="127.0.0.1")
    listeners = await nursery.start(serve)
    port = listeners[0].transport_listener.socket.getsockname()[1]
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    client_context.set_alpn_protocols(["h2"])
    stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), client_context, server_hostname="127.0.0.1")
    await stream.do_handshake()
    assert stream.selected_alpn_protocol() == "h2"
    client = H2Client(stream)
    await client.start()
    ws = await H2WebSocket.open(client)
    assert await ws.event() == TextMessage(f"wss HTTP/2 {0x304 if stream.version() == 'TLSv1.3' else 0x303:#x}")


async def test_a_connection_error_ends_its_websockets_as_lost_connections(serve_h2_tcp):
    watcher = CloseWatcher()
    server = await serve_h2_tcp(http_handler, websocket_handler=watcher)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(raw.headers(1, extended_connect(), end_stream=False))
    assert (b":status", b"200") in raw.decode(await raw.until(HeadersFrame, 1))
    await raw.send(b"\x00\x00\x04\x00\x00\x00\x00\x00\x00data")  # DATA on stream 0: a connection error
    goaway = await raw.until(GoAwayFrame)
    assert goaway.error_code == ErrorCodes.PROTOCOL_ERROR
    await raw.frames_to_eof()
    await watcher.done.wait()
    assert watcher.closed == [1006]
    await server.wait_closed()
