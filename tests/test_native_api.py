"""The native API as a user meets it over the wire: the shapes a Response takes, and the
mistakes a handler can make named in the error it gets."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from trio_httpchannel import Request, Response

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def test_response_headers_given_as_a_dict_are_sent(serve):
    async def handler(request: Request) -> Response:
        return Response(200, {"content-type": "text/plain", "x-a": "1"}, b"hello")

    client = await (await serve(handler))()
    await client.send(GET)
    response = await client.read_response()
    assert (response.status, response.body) == (200, b"hello")
    assert (response.header("content-type"), response.header("x-a")) == ("text/plain", "1")


async def test_response_made_with_headers_of_the_wrong_shape_names_what_is_expected(serve, caplog):
    async def handler(request: Request) -> Response:
        return Response(200, [("content-length", 5)], b"hello")  # type: ignore[list-item]

    client = await (await serve(handler))()
    with caplog.at_level(logging.ERROR, logger="trio_httpchannel"):
        await client.send(GET)
        assert (await client.read_response()).status == 500
    (error,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert error.exc_info is not None
    assert "a mapping or an iterable of (name, value) pairs of str or bytes" in str(error.exc_info[1])


async def test_async_body_yielding_str_aborts_and_the_log_names_the_mistake(serve, caplog):
    async def handler(request: Request) -> Response:
        async def text() -> AsyncIterator[str]:
            yield "hello"

        return Response(200, [], text())  # type: ignore[arg-type]

    client = await (await serve(handler))()
    with caplog.at_level(logging.ERROR, logger="trio_httpchannel"):
        await client.send(GET)
        assert (await client.read_head()).status == 200
        with pytest.raises(EOFError):
            await client.read_chunked()
    (error,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert error.exc_info is not None
    message = str(error.exc_info[1])
    assert "yielded str" in message and "must yield bytes" in message


async def test_async_body_yielding_bytearray_and_memoryview_is_sent(serve):
    async def handler(request: Request) -> Response:
        async def parts() -> AsyncIterator[bytes]:
            yield bytearray(b"ab")
            yield memoryview(b"cd")

        return Response(200, [], parts())

    client = await (await serve(handler))()
    await client.send(GET)
    assert (await client.read_response()).body == b"abcd"
