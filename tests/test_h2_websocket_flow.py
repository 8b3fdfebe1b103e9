"""WebSockets over HTTP/2 (RFC 8441): flow control as backpressure both ways, the WebSocket
timers and the graceful shutdown, per WebSocket, with the connection's other streams going on.

The client is h2's client side and wsproto's frame layer (see ``_h2_ws.py``: no independent
client program speaks RFC 8441). Flow control over a real loopback socket; the timers over
memory streams under the MockClock."""

from __future__ import annotations

import trio
from _apps import http_handler, ws_echo
from _h2_ws import H2WebSocket, extended_connect
from conftest import ws_close_frame
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from trio_httpchannel.http2._stream import Stream
from trio_httpchannel.http2._websocket import StreamTunnel
from trio_httpchannel.websocket import ConnectionClosed, WebSocketRequest

MESSAGE = b"m" * 1000


async def test_an_app_that_does_not_read_holds_only_its_own_stream_until_it_reads(serve_h2_tcp):
    release = trio.Event()

    async def slow(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await release.wait()
        count = 0
        while await ws.receive() != b"last":
            count += 1
        await ws.send(f"{count} messages")

    server = await serve_h2_tcp(http_handler, websocket_handler=slow, ws_max_queue=1)
    client = await server.connect()
    ws = await H2WebSocket.open(client)
    sent = 0
    while ws.window() >= len(MESSAGE) + 8:
        await ws.send(BytesMessage(MESSAGE))
        sent += 1
    assert (await client.get("/")).status == 200  # another stream of the connection is served
    await client.ping()
    assert ws.window() < len(MESSAGE) + 8  # what the app has not taken still holds the window
    release.set()
    while ws.window() < len(MESSAGE) + 8:
        await client.receive()  # the window reopens as the app reads
    await ws.send(BytesMessage(b"last"))
    assert await ws.event() == TextMessage(f"{sent} messages")


async def test_a_websocket_waits_for_its_clients_window_and_other_streams_go_on(serve_h2_tcp):
    sent: list[int] = []
    done = trio.Event()

    async def big(request: WebSocketRequest) -> None:
        ws = await request.accept()
        for n in range(10):
            await ws.send(bytes([n]) * 100_000)
            sent.append(n)
        done.set()
        await ws.receive()

    server = await serve_h2_tcp(http_handler, websocket_handler=big)
    client = await server.connect()
    client.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    await client.flush()
    await client.ping()
    client.held[client.conn.get_next_available_stream_id()] = 0
    ws = await H2WebSocket.open(client)
    assert (await client.get("/")).status == 200  # another stream of the connection is served
    await client.ping()
    assert len(ws.response.body) == 1000  # the window, and not a byte more
    assert len(sent) < 10  # the app's sends wait (what the session holds meanwhile is bounded)
    await client.release(ws.stream_id)
    for n in range(10):
        assert await ws.message() == bytes([n]) * 100_000
    await done.wait()


async def test_a_client_whose_window_stays_shut_has_its_websocket_reset_after_send_timeout(
    serve_h2_memory, autojump_clock
):
    closed: list[int] = []
    done = trio.Event()

    async def big(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.send(b"b" * 10_000)
            await ws.receive()
        except ConnectionClosed as error:
            closed.append(error.reason.code)
            done.set()

    server = await serve_h2_memory(http_handler, websocket_handler=big, send_timeout=10, ws_ping_interval=None)
    client = await server.connect()
    client.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    await client.flush()
    await client.ping()
    client.held[client.conn.get_next_available_stream_id()] = 0
    ws = await H2WebSocket.open(client)
    await trio.sleep(15)
    await done.wait()
    assert closed == [1006]
    while ws.response.reset is None:
        await client.receive()
    assert ws.response.reset == ErrorCodes.CANCEL
    assert (await client.get("/")).status == 200


async def test_an_unanswered_ping_closes_the_websocket_with_1011(serve_h2_memory, autojump_clock):
    server = await serve_h2_memory(http_handler, websocket_handler=ws_echo, ws_ping_interval=5, ws_ping_timeout=5)
    client = await server.connect()
    ws = await H2WebSocket.open(client)
    assert isinstance(await ws.event(), Ping)  # not answered
    event = await ws.event()
    assert isinstance(event, CloseConnection) and event.code == 1011


async def test_an_open_websocket_keeps_its_connection_past_the_idle_timeout(serve_h2_memory, autojump_clock):
    server = await serve_h2_memory(http_handler, websocket_handler=ws_echo, timeout=5, ws_ping_interval=None)
    client = await server.connect()
    ws = await H2WebSocket.open(client)
    await trio.sleep(60)
    await ws.send(TextMessage("still here"))
    assert await ws.event() == TextMessage("still here")


async def test_a_client_that_never_ends_its_stream_after_the_close_is_stopped_after_ws_close_timeout(
    serve_h2_memory, autojump_clock
):
    server = await serve_h2_memory(http_handler, websocket_handler=ws_echo, ws_close_timeout=5, ws_ping_interval=None)
    client = await server.connect()
    ws = await H2WebSocket.open(client)
    await ws.send(CloseConnection(1000))
    assert isinstance(await ws.event(), CloseConnection)
    response = await ws.until_stream_over()
    assert response.ended and response.reset is None  # our END_STREAM; the client's never comes
    started = trio.current_time()
    while ws.response.reset is None:
        await client.receive()
    assert ws.response.reset == ErrorCodes.NO_ERROR  # the close handshake was over: no error
    assert trio.current_time() - started >= 5


async def test_shutdown_closes_websockets_with_1001_then_goaway(serve_h2_tcp):
    server = await serve_h2_tcp(http_handler, websocket_handler=ws_echo)
    raw = await server.raw()  # h2's client stops at the first GOAWAY (python-hyper/h2#1181)
    await raw.handshake()
    await raw.send_frames(raw.headers(1, extended_connect(), end_stream=False))
    assert (b":status", b"200") in raw.decode(await raw.until(HeadersFrame, 1))
    server.channel.shutdown()
    goaway = await raw.frame()
    assert isinstance(goaway, GoAwayFrame) and (goaway.error_code, goaway.last_stream_id) == (0, 1)
    close = await raw.until(DataFrame, 1)
    assert close.data == b"\x88\x16\x03\xe9server shutting down"
    ended = DataFrame(1, ws_close_frame(1001))
    ended.flags.add("END_STREAM")
    await raw.send_frames(ended)
    rest = await raw.frames_to_eof()
    assert [type(frame).__name__ for frame in rest] == ["DataFrame", "GoAwayFrame"]
    assert "END_STREAM" in rest[0].flags and rest[0].data == b""
    await server.wait_closed()


class _Sender:
    def __init__(self) -> None:
        self.ended: list[Stream] = []

    def end_body(self, stream: Stream) -> None:
        self.ended.append(stream)


class _Exchanges:
    """Just what ``StreamTunnel`` calls, recorded."""

    def __init__(self) -> None:
        self.sender = _Sender()
        self.acknowledged: list[int] = []

    def acknowledge(self, stream_id: int, flow: int) -> None:
        self.acknowledged.append(flow)


async def test_the_tunnel_does_nothing_when_called_already_cancelled():
    """As trio's streams: a session whose close handshake ran out of time (its cancel scope
    expired) must not end the stream with END_STREAM as if the handshake were over, nor take
    DATA it will not read."""
    exchanges = _Exchanges()
    stream = Stream(exchanges, 1, "CONNECT", False)  # type: ignore[arg-type]
    stream.put_body(b"frame", 5)
    tunnel = StreamTunnel(exchanges, stream)  # type: ignore[arg-type]
    with trio.CancelScope() as scope:
        scope.cancel()
        await tunnel.send_eof()
    with trio.CancelScope() as scope:
        scope.cancel()
        await tunnel.receive_some()
    assert (exchanges.sender.ended, exchanges.acknowledged, len(stream.inbox)) == ([], [], 1)
    assert await tunnel.receive_some(3) == b"fra"
    assert await tunnel.receive_some() == b"me"
    await tunnel.send_eof()
    assert (exchanges.sender.ended, exchanges.acknowledged) == ([stream], [5])
