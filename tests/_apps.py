"""Small handlers and apps that many test files serve."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import StreamingResponse
from starlette.routing import Route

from trio_httpchannel import Request, Response
from trio_httpchannel.websocket import WebSocketRequest


async def echo(request: Request) -> Response:
    """200 with the request's body."""
    return Response(200, [], await request.read())


async def hello(request: Request) -> Response:
    return Response(200, [], b"hello")


async def http_handler(request: object) -> Response:
    """The plain-HTTP handler of a WebSocket test: 200, no body."""
    return Response(200)


async def ws_echo(request: WebSocketRequest) -> None:
    """Accepts, then sends back each message until the close."""
    ws = await request.accept()
    async for message in ws:
        await ws.send(message)


class EventStream:
    """A server-sent-events stream: one event, then a wait for an event that never comes (the
    wait between two events, made endless), and a record of how the generator ended."""

    def __init__(self) -> None:
        self.ended = trio.Event()
        self.never = trio.Event()

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            yield b"data: first\n\n"
            await self.never.wait()
            yield b"data: never\n\n"
        finally:
            self.ended.set()

    def app(self) -> Starlette:
        async def events(request: StarletteRequest) -> StreamingResponse:
            return StreamingResponse(self.stream(), media_type="text/event-stream")

        async def plain(request: StarletteRequest) -> StreamingResponse:
            async def body() -> AsyncIterator[bytes]:
                yield b"plain"

            return StreamingResponse(body(), media_type="text/plain")

        return Starlette(routes=[Route("/events", events, methods=["GET", "HEAD"]), Route("/plain", plain)])
