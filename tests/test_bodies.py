"""Request and response bodies: Content-Length, chunked both ways, HEAD, 100-continue, streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator

from conftest import GET, MB

from trio_httpchannel import Request, Response


async def echo(request: Request) -> Response:
    return Response(200, [("content-type", "application/octet-stream")], await request.read())


async def test_content_length_body_is_read(serve):
    client = await (await serve(echo))()
    await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    response = await client.read_response()
    assert response.body == b"hello"


async def test_chunked_request_body_with_extensions_and_trailers_is_read(serve):
    client = await (await serve(echo))()
    await client.send(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    assert (await client.read_response()).body == b"hello world"


async def test_connection_persists_after_chunked_request_body(serve):
    client = await (await serve(echo))()
    request = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    await client.send(request + request)
    assert (await client.read_response()).body == b"abc"
    assert (await client.read_response()).body == b"abc"


async def count_up(count: int) -> AsyncIterator[bytes]:
    for number in range(count):
        yield b"%d\n" % number


async def test_streamed_response_is_chunked_for_http11(serve):
    async def stream(request: Request) -> Response:
        return Response(200, [], count_up(3))

    client = await (await serve(stream))()
    await client.send(GET)
    response = await client.read_response()
    assert response.header("transfer-encoding") == "chunked"
    assert response.body == b"0\n1\n2\n"


async def test_streamed_response_is_close_delimited_for_http10(serve):
    async def stream(request: Request) -> Response:
        return Response(200, [], count_up(3))

    client = await (await serve(stream))()
    await client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    response = await client.read_response()
    assert response.header("transfer-encoding") is None
    assert response.header("connection") == "close"
    assert response.body == b"0\n1\n2\n"


async def test_streamed_response_with_content_length_is_not_chunked(serve):
    async def stream(request: Request) -> Response:
        return Response(200, [("content-length", "6")], count_up(3))

    client = await (await serve(stream))()
    await client.send(GET)
    response = await client.read_response()
    assert response.header("transfer-encoding") is None
    assert response.body == b"0\n1\n2\n"


async def test_head_response_has_headers_but_no_body(serve):
    async def page(request: Request) -> Response:
        return Response(200, [("content-type", "text/plain")], b"twelve bytes")

    client = await (await serve(page))()
    await client.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await client.read_response(head_request=True)
    assert head.header("content-length") == "12"
    assert (await client.read_response()).body == b"twelve bytes"


async def test_no_body_and_no_length_for_204(serve):
    async def empty(request: Request) -> Response:
        return Response(204)

    client = await (await serve(empty))()
    await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await client.read_response()
    assert first.status == 204 and first.header("content-length") is None
    assert (await client.read_response()).status == 204


async def test_expect_100_continue_sent_only_when_handler_reads(serve):
    client = await (await serve(echo))()
    await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    interim = await client.read_head()
    assert interim.status == 100
    await client.send(b"data")
    assert (await client.read_response()).body == b"data"


async def test_expect_100_continue_not_sent_when_handler_answers_without_reading(serve):
    async def refuse(request: Request) -> Response:
        return Response(403, [], b"no")

    client = await (await serve(refuse))()
    await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    response = await client.read_head()
    assert response.status == 403
    assert response.header("connection") == "close"


async def test_unread_small_body_is_discarded_and_connection_reused(serve):
    async def ignore(request: Request) -> Response:
        return Response(200, [], b"ignored")

    client = await (await serve(ignore))()
    await client.send(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    first = await client.read_response()
    assert first.header("connection") is None
    assert (await client.read_response()).body == b"ignored"


async def test_large_upload_is_streamed_to_the_handler_in_chunks(serve_tcp):
    sizes: list[int] = []

    async def count(request: Request) -> Response:
        async for data in request.body:
            sizes.append(len(data))
        return Response(200, [], str(sum(sizes)).encode())

    client = await (await serve_tcp(count))()
    body = b"x" * (5 * MB)
    await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert (await client.read_response()).body == str(5 * MB).encode()
    assert max(sizes) <= 65536


async def test_large_download_is_produced_as_fast_as_the_client_reads(serve_lockstep):
    """Over a lock-step stream (no buffering at all): the producer never runs more than a
    couple of chunks ahead of what the client has read."""
    produced = 0
    chunk_size = 65536

    async def produce(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            nonlocal produced
            for _ in range(5 * MB // chunk_size):
                produced += chunk_size
                yield b"y" * chunk_size

        return Response(200, [("content-length", str(5 * MB))], chunks())

    client = await (await serve_lockstep(produce))()
    await client.send(GET)
    await client.read_head()
    consumed = 0
    while consumed < 5 * MB:
        data = await client.receive_some(chunk_size)
        consumed += len(data)
        assert produced - consumed <= 2 * chunk_size
    assert consumed == 5 * MB


async def test_five_megabyte_download_over_tcp(serve_tcp):
    async def produce(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(80):
                yield b"z" * 65536

        return Response(200, [], chunks())

    client = await (await serve_tcp(produce))()
    await client.send(GET)
    response = await client.read_response()
    assert response.body == b"z" * (80 * 65536)
