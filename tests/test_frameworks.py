"""Real applications through the adapter: Starlette, FastAPI and Quart-trio, served over a real
socket on trio and called with httpx, plus raw-socket pipelining through them."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pydantic
import quart
import trio
from conftest import connect_to
from fastapi import Depends, FastAPI
from quart_trio import QuartTrio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from trio_httpchannel import serve
from trio_httpchannel.asgi import ASGIHandler, Lifespan
from trio_httpchannel.server import bind


def starlette_app(events: list[str]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"greeting": "hello from lifespan"}
        events.append("shutdown")

    async def home(request: Request) -> Response:
        return PlainTextResponse(f"{request.state.greeting} at {request.url.path}")

    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"length": len(body), "type": request.headers["content-type"]})

    async def numbers(request: Request) -> Response:
        async def count() -> AsyncIterator[bytes]:
            for n in range(5):
                await trio.sleep(0)
                yield f"{n}\n".encode()

        return StreamingResponse(count(), media_type="text/plain")

    arrived = {"count": 0, "event": trio.Event()}

    async def meet(request: Request) -> Response:
        arrived["count"] += 1
        if arrived["count"] == 8:
            arrived["event"].set()
        await arrived["event"].wait()
        return PlainTextResponse("met")

    routes = [
        Route("/", home),
        Route("/echo", echo, methods=["POST"]),
        Route("/numbers", numbers),
        Route("/meet", meet),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def test_starlette_route_sees_the_lifespan_state(serve_asgi):
    url = await serve_asgi(starlette_app([]))
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/")
    assert (response.status_code, response.text) == (200, "hello from lifespan at /")


async def test_starlette_reads_a_request_body(serve_asgi):
    url = await serve_asgi(starlette_app([]))
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/echo", content=b"x" * 100_000, headers={"content-type": "application/x-test"})
    assert response.json() == {"length": 100_000, "type": "application/x-test"}


async def test_starlette_streams_a_response(serve_asgi):
    url = await serve_asgi(starlette_app([]))
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/numbers")
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.text == "0\n1\n2\n3\n4\n"


async def test_starlette_unknown_route_is_its_404(serve_asgi):
    url = await serve_asgi(starlette_app([]))
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/nowhere")).status_code == 404


async def test_starlette_keep_alive_reuses_one_connection(serve_asgi):
    url = await serve_asgi(starlette_app([]))
    async with httpx.AsyncClient(base_url=url) as client:
        peers = set()
        for _ in range(3):
            response = await client.get("/")
            peers.add(response.extensions["network_stream"].get_extra_info("client_addr"))
    assert len(peers) == 1


async def test_starlette_lifespan_runs_startup_and_shutdown():
    from trio_httpchannel.asgi import Lifespan

    events: list[str] = []
    async with Lifespan(starlette_app(events)) as lifespan:
        assert lifespan.state == {"greeting": "hello from lifespan"}
    assert events == ["startup", "shutdown"]


async def test_eight_pipelined_gets_through_starlette_run_concurrently(serve_asgi):
    url = await serve_asgi(starlette_app([]), max_pipeline=8)
    client = await connect_to(url)
    await client.send(b"GET /meet HTTP/1.1\r\nHost: x\r\n\r\n" * 8)
    with trio.fail_after(10):
        bodies = [(await client.read_response()).body for _ in range(8)]
    assert bodies == [b"met"] * 8


class Item(pydantic.BaseModel):
    name: str
    price: float


def fastapi_app() -> FastAPI:
    app = FastAPI()

    async def tax_rate() -> float:
        return 0.25

    @app.post("/items")
    async def create(item: Item, rate: float = Depends(tax_rate)) -> dict[str, Any]:
        return {"name": item.name, "total": item.price * (1 + rate)}

    return app


async def test_fastapi_validates_a_json_body_and_answers_json(serve_asgi):
    url = await serve_asgi(fastapi_app())
    async with httpx.AsyncClient(base_url=url) as client:
        good = await client.post("/items", json={"name": "pen", "price": 2.0})
        bad = await client.post("/items", json={"name": "pen"})
    assert good.json() == {"name": "pen", "total": 2.5}
    assert bad.status_code == 422


def quart_trio_app(events: list[str]) -> QuartTrio:
    app = QuartTrio(__name__)

    @app.before_serving
    async def startup() -> None:
        events.append("before_serving")

    @app.after_serving
    async def shutdown() -> None:
        events.append("after_serving")

    @app.route("/")
    async def home() -> str:
        return f"hello from quart-trio, {' '.join(events)}"

    @app.route("/items", methods=["POST"])
    async def create() -> dict[str, Any]:
        item = await quart.request.get_json()
        return {"name": item["name"], "total": item["price"] * 1.25}

    @app.route("/numbers")
    async def numbers() -> tuple[AsyncIterator[bytes], int, dict[str, str]]:
        async def count() -> AsyncIterator[bytes]:
            for n in range(5):
                await trio.sleep(0)
                yield f"{n}\n".encode()

        return count(), 200, {"content-type": "text/plain"}

    @app.route("/upload", methods=["POST"])
    async def upload() -> dict[str, Any]:
        body = await quart.request.get_data()
        return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    return app


async def test_quart_trio_route_answers(serve_asgi):
    url = await serve_asgi(quart_trio_app([]))
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/")
    assert (response.status_code, response.text) == (200, "hello from quart-trio, before_serving")


async def test_quart_trio_reads_json_and_answers_json(serve_asgi):
    url = await serve_asgi(quart_trio_app([]))
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/items", json={"name": "pen", "price": 2.0})
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"name": "pen", "total": 2.5}


async def test_quart_trio_streams_a_response(serve_asgi):
    url = await serve_asgi(quart_trio_app([]))
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/numbers")
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.text == "0\n1\n2\n3\n4\n"


async def test_quart_trio_reads_a_10_mb_request_body(serve_asgi):
    body = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    url = await serve_asgi(quart_trio_app([]))
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        response = await client.post("/upload", content=body)
    assert response.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


async def test_quart_trio_before_and_after_serving_run_through_our_lifespan():
    """served by serve() with our Lifespan: before_serving runs before the first request,
    after_serving once the server has shut down."""
    events: list[str] = []
    app = quart_trio_app(events)
    lifespan = Lifespan(app)
    sockets = bind("127.0.0.1", 0)
    stop = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(
                    serve,
                    ASGIHandler(app, state=lifespan.state),
                    sockets=sockets,
                    lifespan=lifespan,
                    shutdown_trigger=stop.wait,
                    handle_signals=False,
                )
            )
            port = sockets[0].getsockname()[1]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                assert (await client.get("/")).text == "hello from quart-trio, before_serving"
            stop.set()
    finally:
        for sock in sockets:
            sock.close()
    assert events == ["before_serving", "after_serving"]
