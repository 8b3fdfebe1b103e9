"""WebSocket through the command line, run for real: SIGTERM closes an open WebSocket with 1001
and the process exits 0 without waiting out --graceful-timeout. The client is the websockets
package."""

from __future__ import annotations

import signal

import pytest
import trio
from cli_apps.harness import ServerProcess, Start, cli  # noqa: F401 (cli is a fixture)
from websockets.exceptions import ConnectionClosedOK
from websockets.trio.client import connect

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
