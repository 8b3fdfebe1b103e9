"""A request body that fails (malformed chunk, over max_body_size, body_timeout) is never turned
into a shorter good one: the client gets the body error's status and the close, whatever the
handler or app answers after, over a real socket with the bad bytes written by the test."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from conftest import connect_to
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from trio_httpchannel import ProtocolError, Request, Response
from trio_httpchannel.asgi import ASGIHandler, ClientDisconnected

CHUNKED_HEAD = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
GOOD_CHUNK = b"5\r\nhello\r\n"

BAD_BODIES = {
    "size-not-hex": GOOD_CHUNK + b"zz\r\nabc\r\n0\r\n\r\n",
    "size-with-0x": GOOD_CHUNK + b"0x5\r\nhello\r\n0\r\n\r\n",
    "size-with-plus": GOOD_CHUNK + b"+5\r\nhello\r\n0\r\n\r\n",
    "extension-ended-by-bare-lf": GOOD_CHUNK + b"5;a\nhello\r\n0\r\n\r\n",
    "data-not-followed-by-crlf": GOOD_CHUNK + b"5\r\nhelloXX0\r\n\r\n",
    "unterminated-trailer": GOOD_CHUNK + b"0\r\nX-Trailer: yes\r\nbroken trailer line\r\n\r\n",
}


class Echoes:
    """What the apps took as complete bodies, and what their later sends met."""

    def __init__(self) -> None:
        self.complete: list[bytes] = []
        self.send_errors: list[BaseException] = []


def breaking_echo(echoes: Echoes) -> Any:
    """The common loop: read until ``more_body`` is false or ``http.disconnect``, then echo."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body += message["body"]
            if not message["more_body"]:
                echoes.complete.append(body)
                break
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
        except OSError as error:
            echoes.send_errors.append(error)
            raise

    return app


async def native_echo(request: Request) -> Response:
    """A handler that swallows the body's error and answers 200 with what it read."""
    body = b""
    try:
        async for data in request.body:
            body += data
    except ProtocolError:
        pass
    return Response(200, [], body)


def starlette_echo(echoes: Echoes) -> Starlette:
    async def echo(request: StarletteRequest) -> StarletteResponse:
        body = await request.body()
        echoes.complete.append(body)
        return StarletteResponse(body)

    return Starlette(routes=[Route("/echo", echo, methods=["POST"])])


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return not [record for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.parametrize("bad", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_malformed_chunked_body_gets_400_not_the_apps_200(serve_tcp, bad, caplog):
    echoes = Echoes()
    client = await (await serve_tcp(ASGIHandler(breaking_echo(echoes))))()
    await client.send(CHUNKED_HEAD + bad)
    response = await client.read_response()
    assert (response.status, response.header("connection")) == (400, "close")
    assert await client.read_to_eof() == b""
    assert echoes.complete == []
    assert no_errors_logged(caplog)


@pytest.mark.parametrize("bad", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_malformed_chunked_body_gets_400_from_starlette(serve_asgi, bad, caplog):
    echoes = Echoes()
    client = await connect_to(await serve_asgi(starlette_echo(echoes)))
    await client.send(CHUNKED_HEAD + bad)
    response = await client.read_response()
    assert (response.status, response.header("connection")) == (400, "close")
    assert echoes.complete == []
    assert no_errors_logged(caplog)


@pytest.mark.parametrize("bad", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_native_handler_that_swallows_a_malformed_body_cannot_answer_200(serve_tcp, bad):
    client = await (await serve_tcp(native_echo))()
    await client.send(CHUNKED_HEAD + bad)
    response = await client.read_response()
    assert (response.status, response.header("connection")) == (400, "close")


def over_limit_upload() -> bytes:
    """128 KiB in 8 KiB chunks, for a max_body_size of 64 KiB."""
    return CHUNKED_HEAD + (b"2000\r\n" + b"u" * 0x2000 + b"\r\n") * 16 + b"0\r\n\r\n"


async def test_chunked_body_over_max_body_size_gets_413_not_a_truncated_echo(serve_tcp, caplog):
    echoes = Echoes()
    client = await (await serve_tcp(ASGIHandler(breaking_echo(echoes)), max_body_size=65536))()
    await client.send(over_limit_upload())
    response = await client.read_response()
    assert (response.status, response.header("connection")) == (413, "close")
    assert echoes.complete == []
    assert no_errors_logged(caplog)


async def test_chunked_body_over_max_body_size_gets_413_from_starlette(serve_asgi, caplog):
    echoes = Echoes()
    client = await connect_to(await serve_asgi(starlette_echo(echoes), max_body_size=65536))
    await client.send(over_limit_upload())
    response = await client.read_response()
    assert (response.status, response.header("connection")) == (413, "close")
    assert echoes.complete == []
    assert no_errors_logged(caplog)


async def test_native_handler_over_max_body_size_cannot_answer_200(serve_tcp):
    client = await (await serve_tcp(native_echo, max_body_size=65536))()
    await client.send(over_limit_upload())
    assert (await client.read_response()).status == 413


async def test_stalled_body_gets_408_not_the_apps_200(serve_tcp, autojump_clock, caplog):
    echoes = Echoes()
    client = await (await serve_tcp(ASGIHandler(breaking_echo(echoes)), body_timeout=5))()
    await client.send(CHUNKED_HEAD + GOOD_CHUNK)
    response = await client.read_response()
    assert (response.status, response.header("connection")) == (408, "close")
    assert echoes.complete == []
    assert no_errors_logged(caplog)


async def test_stalled_body_gets_408_from_starlette(serve_asgi, autojump_clock, caplog):
    echoes = Echoes()
    client = await connect_to(await serve_asgi(starlette_echo(echoes), body_timeout=5))
    await client.send(CHUNKED_HEAD + GOOD_CHUNK)
    response = await client.read_response()
    assert (response.status, response.header("connection")) == (408, "close")
    assert no_errors_logged(caplog)


async def test_native_handler_with_a_stalled_body_cannot_answer_200(serve_tcp, autojump_clock):
    client = await (await serve_tcp(native_echo, body_timeout=5))()
    await client.send(CHUNKED_HEAD + GOOD_CHUNK)
    assert (await client.read_response()).status == 408


async def test_sends_after_a_failed_body_raise_client_disconnected(serve_tcp, caplog):
    echoes = Echoes()
    client = await (await serve_tcp(ASGIHandler(breaking_echo(echoes))))()
    await client.send(CHUNKED_HEAD + BAD_BODIES["size-not-hex"])
    assert (await client.read_response()).status == 400
    await client.read_to_eof()
    (error,) = echoes.send_errors
    assert isinstance(error, ClientDisconnected) and isinstance(error, OSError)
    assert no_errors_logged(caplog)


async def test_good_chunked_body_still_reaches_the_app_whole(serve_tcp):
    echoes = Echoes()
    client = await (await serve_tcp(ASGIHandler(breaking_echo(echoes)), max_body_size=65536))()
    await client.send(CHUNKED_HEAD + GOOD_CHUNK + b"0\r\n\r\n")
    response = await client.read_response()
    assert (response.status, response.body) == (200, b"hello")
    assert echoes.complete == [b"hello"]


async def test_handler_reading_on_after_its_body_failed_sees_the_bodys_error(serve_tcp, autojump_clock, caplog):
    """The 400 goes out as soon as the body fails, while the handler still reads: its next
    read raises the body's error, not a trio exception about the closed body channel."""
    errors: list[BaseException] = []

    async def slow_reader(request: Request) -> Response:
        try:
            async for _ in request.body:
                await trio.sleep(1)
        except Exception as error:
            errors.append(error)
            raise
        return Response(200, [], b"whole")

    client = await (await serve_tcp(slow_reader))()
    await client.send(CHUNKED_HEAD + BAD_BODIES["size-not-hex"])
    response = await client.read_response()
    assert (response.status, response.header("connection")) == (400, "close")
    with trio.fail_after(60):
        while not errors:
            await trio.sleep(1)
    assert isinstance(errors[0], ProtocolError) and errors[0].status == 400
    assert no_errors_logged(caplog)
