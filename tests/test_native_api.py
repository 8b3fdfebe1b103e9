"""The native API as a user meets it over the wire: the shapes a Response takes, and the
mistakes a handler can make named in the error it gets."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import trio
from conftest import GET

from trio_httpchannel import Headers, ProtocolError, Request, RequestBody, Response


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


POST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"


async def error_of(serve, use_the_body) -> str:
    """Serves a handler that calls ``use_the_body(request)`` and answers with the message of
    the ``RuntimeError`` it raises."""

    async def handler(request: Request) -> Response:
        try:
            await use_the_body(request)
        except RuntimeError as error:
            return Response(200, [], str(error).encode())
        return Response(200, [], b"no error")

    client = await (await serve(handler))()
    await client.send(POST)
    return (await client.read_response()).body.decode()


async def test_iterating_the_body_after_read_says_read_took_it_and_returns_it_again(serve):
    async def read_then_iterate(request: Request) -> None:
        await request.read()
        async for _ in request.body:
            pass

    message = await error_of(serve, read_then_iterate)
    assert "already read by request.read()" in message and "returns the same bytes" in message


async def test_read_after_iterating_the_body_says_iteration_consumed_it(serve):
    async def iterate_then_read(request: Request) -> None:
        async for _ in request.body:
            pass
        await request.read()

    assert "consumed by iterating request.body" in await error_of(serve, iterate_then_read)


async def test_iterating_the_body_twice_says_it_was_already_iterated(serve):
    async def iterate_twice(request: Request) -> None:
        for _ in range(2):
            async for _ in request.body:
                pass

    assert "already iterated" in await error_of(serve, iterate_twice)


async def test_read_twice_returns_the_same_bytes(serve):
    async def handler(request: Request) -> Response:
        return Response(200, [], await request.read() + await request.read())

    client = await (await serve(handler))()
    await client.send(POST)
    assert (await client.read_response()).body == b"hellohello"


async def test_read_again_after_a_failed_read_says_the_body_is_gone():
    send, receive = trio.open_memory_channel[bytes](1)
    body = RequestBody(receive)
    body._fail(ProtocolError(400, "malformed chunk"))
    send.close()
    request = Request("POST", "/", "1.1", Headers([]), body)
    with pytest.raises(ProtocolError):
        await request.read()
    with pytest.raises(RuntimeError, match="did not finish"):
        await request.read()
