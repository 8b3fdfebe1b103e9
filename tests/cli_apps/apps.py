"""Apps for the command-line tests, each loaded by the CLI as ``apps:NAME`` (``--app-dir`` here)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from trio_httpchannel import Request, Response


async def native(request: Request) -> Response:
    """Says who asked: the client host and the scheme, as the handler sees them."""
    host = request.client[0] if isinstance(request.client, tuple) else "-"
    return Response(200, [("content-type", "text/plain")], f"native {host} {request.scheme}".encode())


async def client_cert(request: Request) -> Response:
    """The name on the client's TLS certificate, ``-`` without one (or without TLS)."""
    name = request.tls.client_cert_name if request.tls is not None else None
    return Response(200, [("content-type", "text/plain")], f"client {name or '-'}".encode())


async def echo(request: Request) -> Response:
    """The request body, once it has all arrived: a request that stays in flight until the
    client chooses to finish it."""
    return Response(200, [], b"echo " + await request.read())


async def crashing(request: Request) -> Response:
    """``/crash`` kills the process serving it (a worker that dies); else as :func:`native`."""
    if request.path == "/crash":
        os._exit(3)
    return await native(request)


async def endless(request: Request) -> Response:
    """A body that never ends: only a client that leaves ends the response."""

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 65536

    return Response(200, [], chunks())


def make_native() -> Any:
    """A factory (``--factory``)."""
    return native


class nested:
    """For a dotted attribute path: ``apps:nested.handler``."""

    handler = native


def two_arguments(first: object, second: object) -> None:
    """Neither an ASGI app nor a native handler."""


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI 3 app that says who asked and under which root path, and prints its lifespan."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    client = scope["client"][0] if scope.get("client") else "-"
    body = f"asgi {client} {scope['scheme']} {scope.get('root_path', '')!r}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        phase = message["type"].split(".")[1]
        print(f"lifespan {phase}", flush=True)
        await send({"type": f"lifespan.{phase}.complete"})
        if phase == "shutdown":
            return


async def failing_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app whose startup fails."""
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})


class ASGI2:
    """An ASGI 2 app: made with the scope, then called with receive and send."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        if self.scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi2"})


async def websocket_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI 3 app with WebSocket routes: ``/who`` says who asked (the client host and the
    scheme, as the app sees them) and closes; any other path echoes every message and prints
    how the client's end was told (``disconnect CODE``). Its HTTP route says ``plain http``."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"plain http"})
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    if scope["path"] == "/who":
        client = scope["client"][0] if scope.get("client") else "-"
        await send({"type": "websocket.send", "text": f"{client} {scope['scheme']}"})
        await send({"type": "websocket.close", "code": 1000})
        return
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
    print(f"disconnect {message['code']}", flush=True)
