"""Persistence: keep-alive rules of HTTP/1.1 and 1.0, Connection: close, half-close."""

from __future__ import annotations

import trio

from trio_httpchannel import Request, Response


async def ok(request: Request) -> Response:
    return Response(200, [("content-type", "text/plain")], request.path.encode())


async def test_http11_connection_persists(serve):
    client = await (await serve(ok))()
    for path in ("/a", "/b"):
        await client.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        response = await client.read_response()
        assert response.body == path.encode()
        assert response.header("connection") is None


async def test_request_after_connection_close_is_not_answered(serve):
    client = await (await serve(ok))()
    await client.send(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    response = await client.read_response()
    assert response.body == b"/a"
    assert response.header("connection") == "close"
    assert await client.read_to_eof() == b""


async def test_http10_without_keep_alive_closes_after_response(serve):
    client = await (await serve(ok))()
    await client.send(b"GET /a HTTP/1.0\r\n\r\n")
    response = await client.read_response()
    assert response.body == b"/a"
    assert response.header("connection") == "close"
    assert await client.read_to_eof() == b""


async def test_http10_with_keep_alive_persists(serve):
    client = await (await serve(ok))()
    for path in ("/a", "/b"):
        await client.send(f"GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
        response = await client.read_response()
        assert response.body == path.encode()
        assert response.header("connection") == "keep-alive"


async def test_http10_keep_alive_requests_are_not_pipelined(serve, autojump_clock):
    started: list[float] = []

    async def sleepy(request: Request) -> Response:
        started.append(trio.current_time())
        await trio.sleep(1)
        return Response(200, [], b"ok")

    client = await (await serve(sleepy, max_pipeline=4))()
    await client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2)
    await client.read_response()
    await client.read_response()
    assert started[1] - started[0] >= 1


async def test_handler_connection_close_drops_queued_requests(serve, autojump_clock):
    started: list[str] = []

    async def closer(request: Request) -> Response:
        started.append(request.path)
        if request.path == "/close":
            return Response(200, [("connection", "close")], b"bye")
        await trio.sleep(1)
        return Response(200, [], b"late")

    client = await (await serve(closer, max_pipeline=4))()
    await client.send(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\nGET /later HTTP/1.1\r\nHost: x\r\n\r\n")
    response = await client.read_response()
    assert response.body == b"bye"
    assert response.header("connection") == "close"
    assert await client.read_to_eof() == b""


async def test_half_closed_client_gets_every_queued_response_then_eof(serve, autojump_clock):
    async def sleepy(request: Request) -> Response:
        await trio.sleep(1)
        return Response(200, [], request.path.encode())

    client = await (await serve(sleepy))()
    await client.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    await client.send_eof()
    assert (await client.read_response()).body == b"/1"
    last = await client.read_response()
    assert last.body == b"/2"
    assert last.header("connection") == "close"
    assert await client.read_to_eof() == b""


async def test_connection_option_that_only_contains_close_keeps_the_connection(serve):
    client = await (await serve(ok))()
    await client.send(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: xclose, close-ish\r\n\r\n")
    assert (await client.read_response()).header("connection") is None
    await client.send(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await client.read_response()).body == b"/b"


async def test_http10_keep_alive_among_other_options_keeps_the_connection(serve):
    client = await (await serve(ok))()
    await client.send(b"GET /a HTTP/1.0\r\nConnection: Upgrade ,\tKeep-Alive\r\n\r\n")
    assert (await client.read_response()).header("connection") == "keep-alive"
    await client.send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert (await client.read_response()).body == b"/b"
