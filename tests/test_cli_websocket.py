"""WebSocket through the command line, run for real: SIGTERM closes an open WebSocket with 1001
and the process exits 0 without waiting out --graceful-timeout; a WebSocket is one access line;
the --ws options and their variables reach the connection; proxy headers reach a WebSocket's
scope; over HTTP/2 the app's WebSockets are served by extended CONNECT (RFC 8441) unless --ws
none. The client is the websockets package, or raw frames where the test must see them (h2's
client and wsproto's frame layer over HTTP/2)."""

from __future__ import annotations

import signal

import pytest
import trio
from _h2 import H2Client
from _h2_ws import H2WebSocket
from cli_apps.harness import ServerProcess, Start, cli  # noqa: F401 (cli is a fixture)
from conftest import PING, RawClient, open_raw_websocket, read_frame
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.trio.client import connect
from wsproto.events import CloseConnection, TextMessage

WAIT = 30


def url(server: ServerProcess, path: str = "/") -> str:
    return f"ws://{server.host}:{server.port}{path}"


async def test_sigterm_closes_an_open_websocket_with_1001_and_exits_0_at_once(cli: Start) -> None:
    server = await cli("apps:websocket_echo", "--graceful-timeout", "600")
    with trio.fail_after(WAIT):
        async with connect(url(server)) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            server.signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1001
    assert await server.exit_status(WAIT) == 0
    assert "disconnect 1001" in server.stdout.text
    assert "graceful_timeout" not in server.stderr.text


async def test_a_websocket_is_one_access_line_with_status_101_when_it_ends(cli: Start) -> None:
    server = await cli("apps:websocket_echo")
    with trio.fail_after(WAIT):
        async with connect(url(server, "/echo?x=1")) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
        line = await server.stdout.wait_for(r'"GET /echo\?x=1 HTTP/1.1" 101 (\d+) [\d.]+ms$')
    assert line.string.startswith("127.0.0.1 - - [")
    assert int(line.group(1)) > len("HTTP/1.1 101 Switching Protocols\r\n")


async def test_ws_none_makes_an_upgrade_an_ordinary_request(cli: Start) -> None:
    server = await cli("apps:websocket_echo", "--ws", "none")
    with trio.fail_after(WAIT), pytest.raises(InvalidStatus) as refused:
        async with connect(url(server)):
            pass
    assert refused.value.response.status_code == 400
    await server.stdout.wait_for(r'"GET / HTTP/1.1" 400 ')


async def test_ws_none_comes_from_the_environment_too(cli: Start) -> None:
    server = await cli("apps:websocket_echo", env={"TRIO_HTTPCHANNEL_WS": "none"})
    with trio.fail_after(WAIT), pytest.raises(InvalidStatus) as refused:
        async with connect(url(server)):
            pass
    assert refused.value.response.status_code == 400


@pytest.mark.parametrize("how", ["option", "variable"])
async def test_ws_max_size_closes_a_longer_message_with_1009(cli: Start, how: str) -> None:
    if how == "option":
        server = await cli("apps:websocket_echo", "--ws-max-size", "16")
    else:
        server = await cli("apps:websocket_echo", env={"TRIO_HTTPCHANNEL_WS_MAX_SIZE": "16"})
    with trio.fail_after(WAIT):
        async with connect(url(server)) as ws:
            await ws.send("x" * 16)
            assert await ws.recv() == "x" * 16
            await ws.send("x" * 17)
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
    assert ws.close_code == 1009


@pytest.mark.parametrize(("value", "compressed"), [("on", True), ("off", False)])
async def test_ws_per_message_deflate_decides_whether_an_offer_is_accepted(
    cli: Start, value: str, compressed: bool
) -> None:
    server = await cli("apps:websocket_echo", "--ws-per-message-deflate", value)
    with trio.fail_after(WAIT):
        async with connect(url(server), compression="deflate") as ws:
            accepted = ws.response.headers.get("Sec-WebSocket-Extensions")
            await ws.send("hello " * 100)
            assert await ws.recv() == "hello " * 100
    assert (accepted is not None and accepted.startswith("permessage-deflate")) == compressed


async def test_ws_ping_interval_sends_keepalive_pings(cli: Start) -> None:
    server = await cli("apps:websocket_echo", "--ws-ping-interval", "0.05", "--ws-ping-timeout", "off")
    client = RawClient(await server.open())
    with trio.fail_after(WAIT):
        await open_raw_websocket(client)
        assert [(await read_frame(client)).opcode for _ in range(2)] == [PING, PING]


async def test_proxy_headers_reach_a_websockets_scope(cli: Start) -> None:
    server = await cli("apps:websocket_echo", "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    with trio.fail_after(WAIT):
        async with connect(url(server, "/who"), additional_headers=forwarded) as ws:
            assert await ws.recv() == "203.0.113.7 wss"


async def test_an_http2_connection_serves_the_apps_websocket_by_extended_connect(cli: Start) -> None:
    """RFC 8441 through the command line: h2's client and wsproto's frame layer (no client
    program speaks it), over cleartext prior knowledge; the access line says 200 over HTTP/2."""
    server = await cli("apps:websocket_echo")
    with trio.fail_after(WAIT):
        client = H2Client(await server.open())
        await client.start()
        ws = await H2WebSocket.open(client, "/h2")
        assert ws.response.status == 200
        await ws.send(TextMessage("over h2"))
        assert await ws.event() == TextMessage("over h2")
        await ws.send(CloseConnection(1000), end=True)
        assert (await ws.until_stream_over()).reset is None
        await server.stdout.wait_for(r'"CONNECT /h2 HTTP/2" 200 ')


async def test_ws_none_advertises_no_extended_connect_over_http2(cli: Start) -> None:
    server = await cli("apps:websocket_echo", "--ws", "none")
    with trio.fail_after(WAIT):
        client = H2Client(await server.open())
        await client.start()
        await client.ping()
    assert client.conn.remote_settings.enable_connect_protocol == 0
