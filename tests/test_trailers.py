"""Trailers: ``http.response.trailers`` from an ASGI app, ``Response(trailers=...)`` from a native
handler. Sent at the end of a chunked body over HTTP/1.1 to a client that said ``TE: trailers``
(read by the raw client and by h11, and by curl), dropped for any other; over HTTP/2 as a last
HEADERS frame with END_STREAM (read by h2's client)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
import trio
from conftest import GET, get

from trio_httpchannel import Request, Response
from trio_httpchannel.asgi import ASGIHandler

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(
    CURL is None, reason="curl is not installed (scripts/test installs it with apt-get when run as root)"
)
TE = "TE: trailers"


def with_trailers(*chunks: bytes, trailers: list[Any] | None = None, headers: list[Any] | None = None) -> Any:
    """An app sending ``chunks`` as its body, then ``trailers`` in two messages."""
    fields = trailers if trailers is not None else [(b"x-checksum", b"abc123"), (b"X-Count", b"2")]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers or [], "trailers": True})
        for index, data in enumerate(chunks):
            await send({"type": "http.response.body", "body": data, "more_body": index < len(chunks) - 1})
        await send({"type": "http.response.trailers", "headers": fields[:1], "more_trailers": True})
        await send({"type": "http.response.trailers", "headers": fields[1:], "more_trailers": False})

    return app


async def test_asgi_trailers_end_the_chunked_body_when_the_client_takes_them(serve):
    client = await (await serve(ASGIHandler(with_trailers(b"hello ", b"world"))))()
    await client.send(get("/", TE) + GET)
    response = await client.read_response()
    assert response.header("transfer-encoding") == "chunked" and response.body == b"hello world"
    assert response.trailers == [(b"x-checksum", b"abc123"), (b"x-count", b"2")]
    assert (await client.read_response()).trailers == []


async def test_a_single_body_message_with_trailers_is_chunked_too(serve):
    client = await (await serve(ASGIHandler(with_trailers(b"whole"))))()
    await client.send(get("/", "TE: deflate, trailers;q=1"))
    response = await client.read_response()
    assert response.body == b"whole" and response.header("content-length") is None
    assert [name for name, _ in response.trailers] == [b"x-checksum", b"x-count"]


async def test_trailers_are_dropped_for_a_client_that_did_not_ask(serve):
    client = await (await serve(ASGIHandler(with_trailers(b"hello ", b"world"))))()
    await client.send(GET)
    response = await client.read_response()
    assert response.body == b"hello world" and response.trailers == []


async def test_a_head_request_gets_neither_body_nor_trailers(serve):
    client = await (await serve(ASGIHandler(with_trailers(b"hello"))))()
    await client.send(get("/", TE, method="HEAD") + get("/", TE))
    assert (await client.read_response(head_request=True)).body == b""
    assert (await client.read_response()).trailers[0] == (b"x-checksum", b"abc123")


async def test_trailers_are_advertised_over_http_1_1_only(serve):
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append("http.response.trailers" in scope["extensions"])
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"x"})

    connect = await serve(ASGIHandler(app))
    for request in (GET, b"GET / HTTP/1.0\r\n\r\n"):
        client = await connect()
        await client.send(request)
        await client.read_response()
    assert seen == [True, False]


async def test_trailers_announced_to_an_http_1_0_client_fail_the_app(serve):
    client = await (await serve(ASGIHandler(with_trailers(b"x"))))()
    await client.send(b"GET / HTTP/1.0\r\n\r\n")
    assert (await client.read_response()).status == 500


@pytest.mark.parametrize(
    "trailer",
    [(b"bad name", b"1"), (b"x-split", b"a\r\nInjected: yes"), (b"content-length", b"5"), (b"Transfer-Encoding", b"x")],
)
async def test_a_trailer_that_cannot_be_sent_cuts_the_response(serve, trailer):
    failures: list[BaseException] = []
    app = with_trailers(b"hello", trailers=[(b"x-ok", b"1"), trailer])

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except ValueError as error:
            failures.append(error)
            raise

    client = await (await serve(ASGIHandler(recording)))()
    await client.send(get("/", TE))
    head = await client.read_head()
    assert head.header("transfer-encoding") == "chunked"
    with pytest.raises(EOFError):
        await client.read_chunked()
    assert len(failures) == 1


async def test_trailers_before_the_body_ended_fail_the_app(serve):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.trailers", "headers": []})

    client = await (await serve(ASGIHandler(app)))()
    await client.send(get("/", TE))
    assert (await client.read_response()).status == 500


async def test_trailers_not_announced_fail_the_app(serve):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.trailers", "headers": []})

    client = await (await serve(ASGIHandler(app)))()
    await client.send(get("/", TE))
    await client.read_head()
    with pytest.raises(EOFError):
        await client.read_chunked()


async def test_a_native_response_with_trailers_is_chunked_for_a_client_that_takes_them(serve):
    async def handler(request: Request) -> Response:
        return Response(200, {"content-length": "5"}, b"hello", trailers={"Server-Timing": "db;dur=53"})

    client = await (await serve(handler))()
    await client.send(get("/", TE) + GET)
    chunked = await client.read_response()
    assert chunked.header("content-length") is None and chunked.header("transfer-encoding") == "chunked"
    assert (chunked.body, chunked.trailers) == (b"hello", [(b"server-timing", b"db;dur=53")])
    plain = await client.read_response()
    assert plain.header("content-length") == "5" and (plain.body, plain.trailers) == (b"hello", [])


async def test_a_streamed_native_body_may_set_its_trailers_until_its_last_chunk(serve):
    async def handler(request: Request) -> Response:
        async def body() -> Any:
            yield b"a"
            yield b"b"
            response.trailers = [("x-digest", "ab")]

        response = Response(200, [], body(), trailers=[])
        return response

    client = await (await serve(handler))()
    await client.send(get("/", TE))
    response = await client.read_response()
    assert (response.body, response.trailers) == (b"ab", [(b"x-digest", b"ab")])


def test_response_checks_its_trailers_when_made():
    with pytest.raises(ValueError, match="only in the head"):
        Response(200, trailers={"Content-Type": "text/plain"})
    with pytest.raises(ValueError, match="illegal value"):
        Response(200, trailers={"x-a": "1\r\n"})


@needs_curl
async def test_curl_reads_the_trailers_in_the_raw_chunked_body(serve_asgi):
    url = await serve_asgi(with_trailers(b"hello ", b"world"))
    assert CURL is not None
    done = await trio.run_process(
        [CURL, "-sS", "--raw", "-H", TE, url], capture_stdout=True, capture_stderr=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"6\r\nhello \r\n5\r\nworld\r\n0\r\nx-checksum: abc123\r\nx-count: 2\r\n\r\n"


async def test_http2_trailers_are_a_last_headers_frame(serve_h2):
    server = await serve_h2(ASGIHandler(with_trailers(b"hello ", b"world")))
    client = await server.connect()
    response = await client.get("/", headers=[("te", "trailers")])
    assert (response.status, bytes(response.body)) == (200, b"hello world")
    assert response.trailers == [(b"x-checksum", b"abc123"), (b"x-count", b"2")]


async def test_http2_whole_body_with_trailers(serve_h2):
    async def handler(request: Request) -> Response:
        return Response(200, [], b"whole", trailers={"x-a": "1"})

    server = await serve_h2(handler)
    client = await server.connect()
    response = await client.get("/", headers=[("te", "trailers")])
    assert (bytes(response.body), response.trailers) == (b"whole", [(b"x-a", b"1")])
    assert response.header("content-length") == "5"
    plain = await client.get("/")
    assert (bytes(plain.body), plain.trailers) == (b"whole", None)
