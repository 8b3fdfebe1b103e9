"""Real applications' WebSocket routes through ASGIHandler, over a real socket on trio, with the
websockets client: Starlette, FastAPI and Quart-trio."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI, WebSocketException
from fastapi import WebSocket as FastAPIWebSocket
from quart import websocket as quart_websocket
from quart_trio import QuartTrio
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.trio.client import connect


def ws_url(url: str, path: str) -> str:
    return "ws" + url.removeprefix("http") + path


def client(url: str, path: str, **options: Any) -> Any:
    return connect(ws_url(url, path), proxy=None, ping_interval=None, **options)


def starlette_app(disconnects: list[int]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello from lifespan"}

    async def chat(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="chat")
        await websocket.send_text(websocket.state.greeting)
        try:
            while True:
                text = await websocket.receive_text()
                await websocket.send_json({"echo": text, "room": websocket.path_params["room"]})
        except WebSocketDisconnect as disconnect:
            disconnects.append(disconnect.code)

    async def members_only(websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse("members only", status_code=401))

    async def kick(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(code=4004, reason="kicked")

    routes = [
        WebSocketRoute("/chat/{room}", chat),
        WebSocketRoute("/members", members_only),
        WebSocketRoute("/kick", kick),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def test_starlette_websocket_route_talks_and_sees_the_lifespan_state(serve_asgi):
    disconnects: list[int] = []
    url = await serve_asgi(starlette_app(disconnects))
    async with client(url, "/chat/lobby", subprotocols=["chat"]) as ws:
        assert ws.subprotocol == "chat"
        assert await ws.recv() == "hello from lifespan"
        await ws.send("hi")
        assert await ws.recv() == '{"echo":"hi","room":"lobby"}'
        await ws.aclose(4001, "leaving")
    assert disconnects == [4001]


async def test_starlette_denial_response_reaches_the_client(serve_asgi):
    url = await serve_asgi(starlette_app([]))
    with pytest.raises(InvalidStatus) as refused:
        async with client(url, "/members"):
            pass
    assert (refused.value.response.status_code, refused.value.response.body) == (401, b"members only")


async def test_starlette_close_code_and_reason_reach_the_client(serve_asgi):
    url = await serve_asgi(starlette_app([]))
    async with client(url, "/kick") as ws:
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4004, "kicked")


async def test_starlette_unknown_websocket_route_is_refused(serve_asgi):
    url = await serve_asgi(starlette_app([]))
    with pytest.raises(InvalidStatus) as refused:
        async with client(url, "/nowhere"):
            pass
    assert refused.value.response.status_code == 403


def fastapi_app() -> FastAPI:
    app = FastAPI()

    async def user(token: str | None = None) -> str:
        if token != "secret":
            raise WebSocketException(code=1008, reason="bad token")
        return "ada"

    @app.websocket("/sum")
    async def running_sum(websocket: FastAPIWebSocket, name: str = Depends(user)) -> None:
        await websocket.accept()
        total = 0
        async for number in websocket.iter_json():
            total += number
            await websocket.send_json({"user": name, "total": total})

    return app


async def test_fastapi_websocket_route_with_a_dependency(serve_asgi):
    url = await serve_asgi(fastapi_app())
    async with client(url, "/sum?token=secret") as ws:
        for number, total in [(1, 1), (2, 3), (39, 42)]:
            await ws.send(str(number))
            assert await ws.recv() == f'{{"user":"ada","total":{total}}}'


async def test_fastapi_websocket_exception_before_accept_refuses_the_handshake(serve_asgi):
    url = await serve_asgi(fastapi_app())
    with pytest.raises(InvalidStatus) as refused:
        async with client(url, "/sum?token=wrong"):
            pass
    assert refused.value.response.status_code == 403


def quart_app() -> QuartTrio:
    app = QuartTrio(__name__)

    @app.before_serving
    async def startup() -> None:
        app.config["GREETING"] = "hello from quart"

    @app.websocket("/shout/<name>")
    async def shout(name: str) -> None:
        await quart_websocket.accept()
        await quart_websocket.send(app.config["GREETING"])
        while True:
            text = await quart_websocket.receive()
            await quart_websocket.send(f"{name}: {text.upper()}")

    return app


async def test_quart_trio_websocket_route_talks(serve_asgi):
    url = await serve_asgi(quart_app())
    async with client(url, "/shout/ada") as ws:
        assert await ws.recv() == "hello from quart"
        await ws.send("hi")
        assert await ws.recv() == "ada: HI"
