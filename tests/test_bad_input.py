"""Bad input gets the right status with a short body, Connection: close, then the end."""

from __future__ import annotations

import logging

import pytest
import trio
from conftest import H, echo

from trio_httpchannel import Request, Response

BAD_REQUESTS = {
    "malformed request line": (b"GARBAGE\r\n\r\n", {}, 400),
    "malformed header line": (b"GET / HTTP/1.1\r\n" + H + b"No colon here\r\n\r\n", {}, 400),
    "space before colon": (b"GET / HTTP/1.1\r\n" + H + b"X-A : 1\r\n\r\n", {}, 400),
    "missing host on http/1.1": (b"GET / HTTP/1.1\r\n\r\n", {}, 400),
    "repeated host": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {}, 400),
    "conflicting content-length": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        {},
        400,
    ),
    "content-length with transfer-encoding": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        {},
        400,
    ),
    "malformed chunk size": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        {},
        400,
    ),
    "obs-fold": (b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n  continued\r\n\r\n", {}, 400),
    "request line too long": (b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n" + H + b"\r\n", {"max_request_line": 100}, 414),
    "request line too long, incomplete": (b"GET /" + b"a" * 200, {"max_request_line": 100}, 414),
    "header block too long in one write": (
        b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 16384 + b"\r\n\r\n",
        {"max_header_length": 8192},
        431,
    ),
    "header block too long, incomplete": (
        b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 16384,
        {"max_header_length": 8192},
        431,
    ),
    "too many headers": (b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n" * 11 + b"\r\n", {"max_header_count": 10}, 431),
    "content-length over max_body_size": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 11\r\n\r\n",
        {"max_body_size": 10},
        413,
    ),
    "chunked body over max_body_size": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n",
        {"max_body_size": 10},
        413,
    ),
    "unsupported transfer-encoding": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", {}, 501),
    "connect (we are not a proxy)": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", {}, 501),
    "http/2.0 request line": (b"GET / HTTP/2.0\r\n" + H + b"\r\n", {}, 505),
    "http/2 preface with h2 off": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {"h2": False}, 505),
    "http/9.9": (b"GET / HTTP/9.9\r\n" + H + b"\r\n", {}, 505),
    "tls handshake on plain port": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", {}, 400),
}


@pytest.mark.parametrize("request_bytes, settings, status", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_bad_request_gets_status_then_close(serve, request_bytes, settings, status):
    client = await (await serve(echo, **settings))()
    await client.send(request_bytes)
    response = await client.read_response()
    assert response.status == status
    assert response.header("connection") == "close"
    assert response.header("content-type") == "text/plain; charset=utf-8"
    assert len(response.body) < 200
    await client.send_eof()
    assert await client.read_to_eof() == b""


@pytest.mark.parametrize("request_bytes, settings, status", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_server_serves_new_connection_after_bad_request(serve_tcp, request_bytes, settings, status):
    connect = await serve_tcp(echo, **settings)
    bad = await connect()
    await bad.send(request_bytes)
    assert (await bad.read_response()).status == status
    good = await connect()
    await good.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
    assert (await good.read_response()).body == b"ok"


async def test_error_for_pipelined_request_waits_its_turn(serve, autojump_clock):
    async def slow(request: Request) -> Response:
        await trio.sleep(1)
        return Response(200, [], request.path.encode())

    client = await (await serve(slow))()
    await client.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n")
    assert (await client.read_response()).body == b"/1"
    assert (await client.read_response()).body == b"/2"
    assert (await client.read_response()).status == 400
    assert await client.read_to_eof() == b""


async def test_handler_reading_too_large_chunked_body_sees_protocol_error(serve):
    seen: list[int] = []

    async def reader(request: Request) -> Response:
        try:
            await request.read()
        except Exception as error:
            seen.append(getattr(error, "status", 0))
            raise
        return Response(200, [], b"unexpected")

    client = await (await serve(reader, max_body_size=10))()
    await client.send(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n"
    )
    assert (await client.read_response()).status == 413
    assert seen == [413]


async def test_bad_request_is_logged_at_debug_level_only(serve, caplog):
    client = await (await serve(echo))()
    with caplog.at_level(logging.DEBUG, logger="trio_httpchannel"):
        await client.send(b"GARBAGE\r\n\r\n")
        await client.read_response()
        await client.send_eof()
        await client.read_to_eof()
    assert caplog.records
    assert all(record.levelno == logging.DEBUG for record in caplog.records)
    assert all(record.exc_info is None for record in caplog.records)


async def test_leading_empty_lines_before_request_are_ignored(serve):
    client = await (await serve(echo))()
    await client.send(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await client.read_response()).status == 200
