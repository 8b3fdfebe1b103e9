"""Work an app does after its response (Starlette's and FastAPI's background tasks) does not
delay the connection's next request: the first request's background task waits for an event
that only the second request's handler sets, so the test passes only if the second request is
read and answered, on the same keep-alive connection, while that work is still waiting."""

from __future__ import annotations

from typing import Any

import httpx
import trio
from conftest import GUARD
from fastapi import BackgroundTasks, FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from trio_httpchannel.asgi import ASGIHandler


class Relay:
    """The first request's background work waits on ``released``; the second sets it."""

    def __init__(self) -> None:
        self.released = trio.Event()
        self.work_done = trio.Event()
        self.waiting_when_second_came: list[bool] = []

    async def background(self) -> None:
        await self.released.wait()
        self.work_done.set()

    def second(self) -> None:
        self.waiting_when_second_came.append(not self.work_done.is_set())
        self.released.set()


def fastapi_app(relay: Relay) -> FastAPI:
    app = FastAPI()

    @app.get("/first")
    async def first(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(relay.background)
        return {"answer": "first"}

    @app.get("/second")
    async def second() -> dict[str, str]:
        relay.second()
        return {"answer": "second"}

    return app


def starlette_app(relay: Relay) -> Starlette:
    async def first(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse("first", background=BackgroundTask(relay.background))

    async def second(request: StarletteRequest) -> PlainTextResponse:
        relay.second()
        return PlainTextResponse("second")

    return Starlette(routes=[Route("/first", first), Route("/second", second)])


async def two_requests_on_one_connection(url: str) -> tuple[list[str], set[Any]]:
    async with httpx.AsyncClient(base_url=url) as client:
        bodies, peers = [], set()
        for path in ("/first", "/second"):
            response = await client.get(path)
            bodies.append(response.text)
            peers.add(response.extensions["network_stream"].get_extra_info("client_addr"))
    return bodies, peers


async def test_fastapi_background_task_does_not_delay_the_next_request(serve_asgi, autojump_clock):
    relay = Relay()
    url = await serve_asgi(fastapi_app(relay))
    with trio.fail_after(GUARD):
        bodies, peers = await two_requests_on_one_connection(url)
        await relay.work_done.wait()
    assert bodies == ['{"answer":"first"}', '{"answer":"second"}']
    assert len(peers) == 1
    assert relay.waiting_when_second_came == [True]


async def test_starlette_background_task_does_not_delay_the_next_request(serve_asgi, autojump_clock):
    relay = Relay()
    url = await serve_asgi(starlette_app(relay))
    with trio.fail_after(GUARD):
        bodies, peers = await two_requests_on_one_connection(url)
        await relay.work_done.wait()
    assert bodies == ["first", "second"]
    assert len(peers) == 1
    assert relay.waiting_when_second_came == [True]


async def test_raw_asgi_work_after_the_response_does_not_delay_the_next_request(serve_tcp, autojump_clock):
    relay = Relay()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})
        if scope["path"] == "/first":
            await relay.background()
        else:
            relay.second()

    client = await (await serve_tcp(ASGIHandler(app)))()
    with trio.fail_after(GUARD):
        await client.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await client.read_response()).body == b"/first"
        await client.send(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await client.read_response()).body == b"/second"
        await relay.work_done.wait()
    assert relay.waiting_when_second_came == [True]
