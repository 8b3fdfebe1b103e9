"""A client that goes away while its request is in flight is noticed at once, over a real
socket: ASGI ``receive()`` gives ``http.disconnect`` (a pending call wakes up), native handlers
see ``request.wait_disconnected()`` return; a client that only half-closed still gets the
answer a handler gives anyway; an ASGI streamed response whose client leaves stops at once.

Every wait is guarded by ``trio.fail_after`` under the MockClock's autojump: had the server not
noticed, all tasks would block, the clock would jump and the test fail at once."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import trio
from conftest import GET, GUARD, EventStream, connect_to
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest

from trio_httpchannel import ClientDisconnected, Request, Response
from trio_httpchannel.asgi import ASGIHandler


async def hello(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"answered anyway"})


class Watch:
    """What an app saw, and an event set once it saw the client leave."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.seen: list[bool] = []
        self.running = trio.Event()
        self.told = trio.Event()


def waiting_app(watch: Watch) -> Any:
    """Reads the (empty) body, then waits on ``receive()`` until told; then answers anyway."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        watch.messages.append(await receive())
        watch.messages.append(await receive())
        watch.told.set()
        await hello(send)

    return app


async def test_pending_receive_gives_http_disconnect_when_the_client_closes(serve_tcp, autojump_clock):
    watch = Watch()
    client = await (await serve_tcp(ASGIHandler(waiting_app(watch))))()
    await client.send(GET)
    await client.aclose()
    with trio.fail_after(GUARD):
        await watch.told.wait()
    assert watch.messages == [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}]


async def test_half_closed_client_gets_the_answer_the_app_gives_after_the_disconnect(serve_tcp, autojump_clock):
    watch = Watch()
    client = await (await serve_tcp(ASGIHandler(waiting_app(watch))))()
    await client.send(GET)
    await client.send_eof()
    with trio.fail_after(GUARD):
        response = await client.read_response()
    assert (response.status, response.body) == (200, b"answered anyway")
    assert watch.messages[-1] == {"type": "http.disconnect"}


async def test_closing_request_still_notices_the_client_leaving(serve_tcp, autojump_clock):
    """After a ``Connection: close`` request nothing more is parsed, but the connection is
    still read to notice the client leaving."""
    watch = Watch()
    client = await (await serve_tcp(ASGIHandler(waiting_app(watch))))()
    await client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await client.aclose()
    with trio.fail_after(GUARD):
        await watch.told.wait()


def waiting_handler(watch: Watch) -> Any:
    async def handler(request: Request) -> Response:
        watch.seen.append(request.is_disconnected())
        watch.running.set()
        await request.wait_disconnected()
        watch.seen.append(request.is_disconnected())
        watch.told.set()
        return Response(200, [], b"answered anyway")

    return handler


async def test_native_handler_wait_disconnected_returns_when_the_client_closes(serve_tcp, autojump_clock):
    watch = Watch()
    client = await (await serve_tcp(waiting_handler(watch)))()
    await client.send(GET)
    with trio.fail_after(GUARD):
        await watch.running.wait()
        await client.aclose()
        await watch.told.wait()
    assert watch.seen == [False, True]


async def test_native_handler_answering_a_half_closed_client_has_its_answer_written(serve_tcp, autojump_clock):
    watch = Watch()
    client = await (await serve_tcp(waiting_handler(watch)))()
    await client.send(GET)
    await client.send_eof()
    with trio.fail_after(GUARD):
        response = await client.read_response()
    assert response.body == b"answered anyway"
    assert await client.read_to_eof() == b""


async def test_fastapi_polling_is_disconnected_sees_true_when_httpx_gives_up(serve_asgi, autojump_clock):
    """As ``curl --max-time 1`` against a long poll: httpx is cancelled and closes."""
    seen: list[bool] = []
    told = trio.Event()
    app = FastAPI()

    @app.get("/poll")
    async def poll(request: FastAPIRequest) -> dict[str, str]:
        while not await request.is_disconnected():
            await trio.sleep(0.5)
        seen.append(True)
        told.set()
        return {"status": "gone"}

    url = await serve_asgi(app)
    async with httpx.AsyncClient(base_url=url) as client:
        with trio.move_on_after(1):
            await client.get("/poll")
    with trio.fail_after(GUARD):
        await told.wait()
    assert seen == [True]


async def test_starlette_event_stream_stops_when_httpx_closes_it(serve_asgi, autojump_clock):
    events = EventStream()
    url = await serve_asgi(events.app())
    async with httpx.AsyncClient(base_url=url) as client, client.stream("GET", "/events") as response:
        async for line in response.aiter_lines():
            assert line == "data: first"
            break
    with trio.fail_after(GUARD):
        await events.ended.wait()


async def test_starlette_event_stream_stops_when_a_raw_client_closes(serve_asgi, autojump_clock):
    events = EventStream()
    url = await serve_asgi(events.app())
    client = await connect_to(url)
    await client.send(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await client.read_head()).status == 200
    assert b"data: first" in await client.read_until(b"\n\n")
    await client.aclose()
    with trio.fail_after(GUARD):
        await events.ended.wait()


async def test_handler_raising_client_disconnected_has_the_connection_aborted_quietly(serve_tcp, caplog):
    async def gives_up(request: Request) -> Response:
        raise ClientDisconnected("nobody is listening")

    client = await (await serve_tcp(gives_up))()
    await client.send(GET)
    with trio.fail_after(GUARD):
        assert await client.read_to_eof() == b""
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
