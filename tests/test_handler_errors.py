"""A failing handler costs one response, never the server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from conftest import GET

from trio_httpchannel import Request, Response


async def boom(request: Request) -> Response:
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    return Response(200, [], b"fine")


async def test_handler_exception_gets_500_and_is_logged_once(serve, caplog):
    client = await (await serve(boom))()
    with caplog.at_level(logging.ERROR, logger="trio_httpchannel"):
        await client.send(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await client.read_response()
    assert response.status == 500
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and "handler bug" in str(errors[0].exc_info[1])


async def test_next_connection_served_after_handler_exception(serve_tcp):
    connect = await serve_tcp(boom)
    first = await connect()
    await first.send(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await first.read_response()).status == 500
    second = await connect()
    await second.send(GET)
    assert (await second.read_response()).body == b"fine"


async def test_handler_returning_non_response_gets_500(serve):
    async def wrong(request: Request) -> Response:
        return "not a response"  # type: ignore[return-value]

    client = await (await serve(wrong))()
    await client.send(GET)
    assert (await client.read_response()).status == 500


async def test_response_header_with_newline_gets_500_not_a_split_response(serve):
    async def splitting(request: Request) -> Response:
        return Response(200, [("x-evil", "a\r\nSet-Cookie: stolen=1")], b"")

    client = await (await serve(splitting))()
    await client.send(GET)
    response = await client.read_response()
    assert response.status == 500
    assert response.header("set-cookie") is None


async def test_body_stream_failing_midway_aborts_the_connection(serve):
    async def broken(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("stream bug")

        return Response(200, [], chunks())

    client = await (await serve(broken))()
    await client.send(GET)
    head = await client.read_head()
    assert head.status == 200
    with pytest.raises(EOFError):
        await client.read_chunked()


def test_response_rejects_informational_status():
    with pytest.raises(ValueError, match="200 to 599"):
        Response(101)
