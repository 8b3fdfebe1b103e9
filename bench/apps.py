"""The one app every server in the benchmark serves, in each server's own interface.

``GET /`` (any path but ``/sleep``) answers ``200``, ``content-type: text/plain`` and the 13
bytes ``Hello, world!``; ``GET /sleep`` answers the same after sleeping ``SLEEP`` seconds, for
the pipelining scenario. The WebSocket scenarios serve ``asgi_websocket_app`` and
``native_websocket_app`` instead: the same, and a WebSocket that echoes every message (so the
HTTP scenarios' apps carry no WebSocket branch). Nothing is logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sniffio

from trio_httpchannel import Request, Response
from trio_httpchannel.websocket import WebSocketRequest

BODY = b"Hello, world!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
SLEEP = 0.5

Scope = dict[str, Any]
Message = dict[str, Any]


async def sleep(seconds: float) -> None:
    """Sleep in whichever event loop runs us (trio for ours and Hypercorn, asyncio for Uvicorn)."""
    if sniffio.current_async_library() == "trio":
        import trio

        await trio.sleep(seconds)
    else:
        import asyncio

        await asyncio.sleep(seconds)


async def asgi_app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """The ASGI 3 app: the hello-world response with its Content-Length (as frameworks send it,
    so that no server falls back to chunked framing), and a lifespan that only acknowledges."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["path"] == "/sleep":
        await sleep(SLEEP)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def lifespan(
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Acknowledge startup and shutdown, with nothing to set up."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def native_app(request: Request) -> Response:
    """The native trio-httpchannel handler: the same response, without the ASGI adapter."""
    if request.path == "/sleep":
        await sleep(SLEEP)
    return Response(200, [("content-type", "text/plain")], BODY)


async def asgi_websocket_app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """:func:`asgi_app`, and a ``websocket`` scope that accepts and echoes every message until
    the client leaves."""
    if scope["type"] != "websocket":
        await asgi_app(scope, receive, send)
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message["text"]})


async def native_websocket_echo(request: WebSocketRequest) -> None:
    """The native WebSocket handler: accept, echo every message."""
    ws = await request.accept()
    async for message in ws:
        await ws.send(message)


class NativeWebSocketApp:
    """:func:`native_app` with :func:`native_websocket_echo` as its ``websocket_handler``, the
    attribute the command line (as ``HTTPChannel``) looks for."""

    websocket_handler = staticmethod(native_websocket_echo)

    async def __call__(self, request: Request) -> Response:
        return await native_app(request)


native_websocket_app = NativeWebSocketApp()
