"""The native API as a user meets it over the wire: the shapes a Response takes, and the
mistakes a handler can make named in the error it gets."""

from __future__ import annotations

import logging

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
