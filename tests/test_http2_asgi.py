"""ASGI applications over HTTP/2, through the unchanged adapter: Starlette, FastAPI and
Quart-trio called with httpx over HTTP/2 (prior knowledge) on a real socket, streaming both
ways, many streams at once on one connection, background tasks, and ``http.disconnect`` after
the response."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import pydantic
import quart
import trio
from fastapi import FastAPI
from quart_trio import QuartTrio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route


def h2_client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, http1=False, http2=True, timeout=30)


def starlette_app(log: list[str], disconnected: trio.Event | None = None) -> Starlette:
    async def version(request: Request) -> Response:
        return PlainTextResponse(f"{request.scope['http_version']} {request.headers['host']} {request.url.path}")

    async def digest(request: Request) -> Response:
        hasher = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            hasher.update(chunk)
            size += len(chunk)
        return JSONResponse({"size": size, "sha256": hasher.hexdigest()})

    async def echo_stream(request: Request) -> Response:
        async def back() -> AsyncIterator[bytes]:
            async for chunk in request.stream():
                yield chunk.upper()

        return StreamingResponse(back(), media_type="application/octet-stream")

    async def later(request: Request) -> Response:
        async def note() -> None:
            await trio.sleep(0)
            log.append("background ran")

        return PlainTextResponse("now", background=BackgroundTask(note))

    async def disconnect(request: Request) -> Response:
        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            log.append("http.disconnect")
            assert disconnected is not None
            disconnected.set()

        return PlainTextResponse("watched", background=BackgroundTask(watch))

    return Starlette(
        routes=[
            Route("/version", version),
            Route("/digest", digest, methods=["POST"]),
            Route("/echo", echo_stream, methods=["POST"]),
            Route("/later", later),
            Route("/disconnect", disconnect),
        ]
    )


async def test_starlette_sees_http_version_2_and_the_authority_as_host(serve_asgi):
    base = await serve_asgi(starlette_app([]))
    async with h2_client(base) as client:
        response = await client.get("/version")
    assert response.http_version == "HTTP/2"
    assert response.text == f"2 {base.removeprefix('http://')} /version"


async def test_starlette_reads_a_large_upload_streamed(serve_asgi):
    body = bytes(range(256)) * 40_000
    base = await serve_asgi(starlette_app([]))

    async def upload() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100_000):
            yield body[start : start + 100_000]

    async with h2_client(base) as client:
        response = await client.post("/digest", content=upload())
    assert response.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


async def test_starlette_streams_back_what_it_reads(serve_asgi):
    base = await serve_asgi(starlette_app([]))
    async with h2_client(base) as client:
        response = await client.post("/echo", content=b"abc" * 100_000)
    assert response.content == b"ABC" * 100_000


async def test_many_streams_on_one_connection_at_once(serve_asgi):
    base = await serve_asgi(starlette_app([]))
    results: list[str] = []
    async with h2_client(base) as client:

        async def one(index: int) -> None:
            response = await client.get(f"/version?{index}")
            results.append(response.text)

        async with trio.open_nursery() as nursery:
            for index in range(50):
                nursery.start_soon(one, index)
    assert len(results) == 50 and all(text.startswith("2 ") for text in results)


async def test_background_task_runs_and_disconnect_comes_after_the_response(serve_asgi):
    log: list[str] = []
    disconnected = trio.Event()
    base = await serve_asgi(starlette_app(log, disconnected))
    async with h2_client(base) as client:
        assert (await client.get("/later")).text == "now"
        assert (await client.get("/disconnect")).text == "watched"
        with trio.fail_after(30):
            await disconnected.wait()
    assert sorted(log) == ["background ran", "http.disconnect"]


class Item(pydantic.BaseModel):
    name: str
    count: int


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/items")
    async def create(item: Item) -> dict[str, object]:
        return {"name": item.name.upper(), "count": item.count + 1}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            for n in range(1000):
                yield b"line %d\n" % n

        return StreamingResponse(lines())

    return app


async def test_fastapi_json_and_a_streamed_response_over_http2(serve_asgi):
    base = await serve_asgi(fastapi_app())
    async with h2_client(base) as client:
        created = await client.post("/items", json={"name": "widget", "count": 2})
        streamed = await client.get("/stream")
    assert created.http_version == "HTTP/2"
    assert created.json() == {"name": "WIDGET", "count": 3}
    assert streamed.content == b"".join(b"line %d\n" % n for n in range(1000))


def quart_trio_app() -> QuartTrio:
    app = QuartTrio(__name__)

    @app.route("/version")
    async def version() -> str:
        return f"{quart.request.http_version} {quart.request.headers['host']}"

    @app.route("/items", methods=["POST"])
    async def create() -> dict[str, object]:
        item = await quart.request.get_json()
        return {"name": item["name"], "total": item["price"] * 2}

    @app.route("/echo", methods=["POST"])
    async def echo() -> tuple[AsyncIterator[bytes], int, dict[str, str]]:
        @quart.stream_with_context
        async def back() -> AsyncIterator[bytes]:
            async for chunk in quart.request.body:
                yield bytes(chunk).upper()

        return back(), 200, {"content-type": "application/octet-stream"}

    @app.route("/upload", methods=["POST"])
    async def upload() -> dict[str, object]:
        body = await quart.request.get_data()
        return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    return app


async def test_quart_trio_answers_over_http2_and_sees_version_2(serve_asgi):
    base = await serve_asgi(quart_trio_app())
    async with h2_client(base) as client:
        response = await client.get("/version")
        created = await client.post("/items", json={"name": "pen", "price": 2.0})
    assert response.http_version == "HTTP/2"
    assert response.text == f"2 {base.removeprefix('http://')}"
    assert created.json() == {"name": "pen", "total": 4.0}


async def test_quart_trio_streams_back_a_streamed_upload_over_http2(serve_asgi):
    base = await serve_asgi(quart_trio_app())
    sent = [bytes([97 + n % 26]) * 50_000 for n in range(20)]

    async def upload() -> AsyncIterator[bytes]:
        for chunk in sent:
            await trio.sleep(0)
            yield chunk

    received = bytearray()
    async with h2_client(base) as client:
        async with client.stream("POST", "/echo", content=upload()) as response:
            async for chunk in response.aiter_bytes():
                received += chunk
    assert response.http_version == "HTTP/2"
    assert bytes(received) == b"".join(sent).upper()


async def test_quart_trio_reads_a_10_mb_body_within_the_flow_control_windows(serve_asgi):
    body = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    base = await serve_asgi(quart_trio_app())
    async with h2_client(base) as client:
        response = await client.post("/upload", content=body)
    assert response.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


async def test_quart_trio_answers_many_streams_of_one_connection_at_once(serve_asgi):
    base = await serve_asgi(quart_trio_app())
    texts: list[str] = []
    async with h2_client(base) as client:

        async def one() -> None:
            texts.append((await client.get("/version")).text)

        async with trio.open_nursery() as nursery:
            for _ in range(40):
                nursery.start_soon(one)
    assert len(texts) == 40 and {text.split()[0] for text in texts} == {"2"}
