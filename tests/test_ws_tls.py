"""WebSocket over TLS (wss://), with a throwaway certificate, checked by the websockets client:
the same messages and close handshake as over plain TCP (TLS has no half-close, so the server
closes after the close frames without waiting for the client's end), and ``wss`` in the scope."""

from __future__ import annotations

import functools
import ssl
from typing import Any

import pytest
import trio
import trustme
from conftest import http_handler
from websockets.exceptions import ConnectionClosedError
from websockets.trio.client import connect

from trio_httpchannel import HTTPChannel
from trio_httpchannel.asgi import ASGIHandler
from trio_httpchannel.websocket import CloseReason, WebSocketRequest


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def serve_tls(nursery: trio.Nursery, authority: trustme.CA) -> Any:
    """``url = await serve_tls(handler, **channel_options)``: a wss:// base URL on loopback."""

    async def start(handler: Any, **options: Any) -> str:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1").configure_cert(context)
        channel = HTTPChannel(handler, ws_ping_interval=None, **options)
        serve = functools.partial(trio.serve_ssl_over_tcp, channel, 0, context, host="127.0.0.1")
        listeners = await nursery.start(serve)
        return f"wss://127.0.0.1:{listeners[0].transport_listener.socket.getsockname()[1]}"

    return start


def client(url: str, authority: trustme.CA, **options: Any) -> Any:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return connect(url, ssl=context, proxy=None, ping_interval=None, **options)


async def test_messages_and_the_close_code_over_tls(serve_tls, authority):
    ended: list[CloseReason | None] = []
    done = trio.Event()

    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send(f"{request.scheme}: {message}")
        ended.append(ws.closed)
        done.set()

    url = await serve_tls(http_handler, websocket_handler=echo)
    async with client(url + "/echo", authority) as ws:
        await ws.send("secret")
        assert await ws.recv() == "wss: secret"
        await ws.aclose(4002, "over and out")
    await done.wait()
    assert ended == [CloseReason(4002, "over and out")]


async def test_the_server_closes_over_tls(serve_tls, authority):
    async def closer(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.close(4000, "bye")

    url = await serve_tls(http_handler, websocket_handler=closer)
    async with client(url, authority) as ws:
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4000, "bye")


async def test_the_asgi_scope_says_wss(serve_tls, authority):
    schemes: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        schemes.append(scope["scheme"])
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hi"})

    url = await serve_tls(ASGIHandler(app))
    async with client(url, authority) as ws:
        assert await ws.recv() == "hi"
    assert schemes == ["wss"]
