"""WebSockets over HTTP/2 (RFC 8441): an extended CONNECT becomes a WebSocket on its stream.

No independent client program speaks RFC 8441 here (curl and the websockets package open
WebSockets over HTTP/1.1 only), so the client is made of libraries that are not our code: h2's
client side for HTTP/2 (it also checks that every frame the server sends is valid) and wsproto's
handshake-free frame layer for the WebSocket (``_h2_ws.py``); raw frames built with hyperframe
and hpack for what h2 refuses to send. Over a real loopback socket unless a timer is tested
(memory streams under the MockClock)."""

from __future__ import annotations

from _apps import http_handler, ws_echo
from _h2_ws import H2WebSocket
from wsproto.events import BytesMessage, CloseConnection, TextMessage


async def test_an_extended_connect_becomes_a_websocket_echoing_both_ways(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    client = await server.connect()
    ws = await H2WebSocket.open(client, "/chat")
    assert ws.response.status == 200
    assert ws.response.header("sec-websocket-accept") is None
    await ws.send(TextMessage("hello"))
    assert await ws.event() == TextMessage("hello")
    await ws.send(BytesMessage(b"\x00\x01"))
    event = await ws.event()
    assert isinstance(event, BytesMessage) and event.data == b"\x00\x01"
    await ws.send(CloseConnection(1000))
    event = await ws.event()
    assert isinstance(event, CloseConnection) and event.code == 1000
    await ws.end()
    response = await ws.until_stream_over()
    assert response.ended and response.reset is None
