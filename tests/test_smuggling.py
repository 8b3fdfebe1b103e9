"""A corpus of request-smuggling and parser-differential payloads, over loopback and memory.

Request smuggling works when two parsers (a proxy's and ours) disagree on where a request
ends. Every ambiguous framing must therefore be refused with one error and the connection
closed, so that no byte after the ambiguity is ever read as a request. Each refused case pins
the status and the end of the connection; each tolerated variant (one the RFCs let a recipient
accept) pins that its body is framed exactly as sent, so the request after it is answered as the
next request and the connection lives on. Timers run under ``autojump_clock``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from conftest import H

from trio_httpchannel import Request, Response

POST = b"POST / HTTP/1.1\r\n" + H
NEXT = b"GET /2 HTTP/1.1\r\n" + H + b"\r\n"
CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"
TE_POST = POST + b"Transfer-Encoding: chunked\r\n\r\n"


def echo_recording(seen: list[str]) -> Callable[[Request], Any]:
    """Answers ``target|body`` and records each target it was called for."""

    async def echo(request: Request) -> Response:
        seen.append(request.target)
        return Response(200, [], request.target.encode() + b"|" + await request.read())

    return echo


REFUSED_HEADS: dict[str, tuple[bytes, Any]] = {
    # CL.TE and TE.CL: both framings at once.
    "cl.te": (POST + b"Content-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED", 400),
    "te.cl": (POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400),
    "te.cl with expect": (
        POST + b"Expect: 100-continue\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    ),
    "te tab-separated with cl": (POST + b"Transfer-Encoding:\tchunked\r\nContent-Length: 5\r\n\r\n" + CHUNKED, 400),
    "te upper-case with cl": (POST + b"Transfer-Encoding: CHUNKED\r\nContent-Length: 5\r\n\r\n" + CHUNKED, 400),
    # TE.TE: odd spellings and whitespace.
    "te space before colon": (POST + b"Transfer-Encoding : chunked\r\n\r\n" + CHUNKED, 400),
    "te xchunked": (POST + b"Transfer-Encoding: xchunked\r\n\r\n" + CHUNKED, 501),
    "te chunked, identity": (POST + b"Transfer-Encoding: chunked, identity\r\n\r\n" + CHUNKED, 501),
    "te identity, chunked": (POST + b"Transfer-Encoding: identity, chunked\r\n\r\n" + CHUNKED, 501),
    "te quoted": (POST + b'Transfer-Encoding: "chunked"\r\n\r\n' + CHUNKED, 501),
    "te empty": (POST + b"Transfer-Encoding: \r\n\r\n" + CHUNKED, 501),
    "te vertical tab before value": (POST + b"Transfer-Encoding:\x0bchunked\r\n\r\n" + CHUNKED, 400),
    "te vertical tab after value": (POST + b"Transfer-Encoding: chunked\x0b\r\n\r\n" + CHUNKED, 400),
    "te form feed": (POST + b"Transfer-Encoding:\x0cchunked\r\n\r\n" + CHUNKED, 400),
    "te empty elements only": (POST + b"Transfer-Encoding: , ,\r\n\r\n" + CHUNKED, 501),
    "te chunked twice in a list": (POST + b"Transfer-Encoding: chunked, , chunked\r\n\r\n" + CHUNKED, 501),
    "te empty element with cl": (POST + b"Transfer-Encoding: ,chunked\r\nContent-Length: 5\r\n\r\n" + CHUNKED, 400),
    "te twice": (POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED, 501),
    "te chunked then identity": (
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + CHUNKED,
        501,
    ),
    "te on a leading-whitespace line": (
        b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" + H + b"\r\n" + CHUNKED,
        400,
    ),
    "te folded onto the next line": (POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n" + CHUNKED, 400),
    # Content-Length: duplicated or obfuscated.
    "cl plus sign": (POST + b"Content-Length: +5\r\n\r\nhello", 400),
    "cl hex": (POST + b"Content-Length: 0x5\r\n\r\nhello", 400),
    "cl underscore": (POST + b"Content-Length: 1_0\r\n\r\nhellohello", 400),
    "cl full-width digit": (POST + b"Content-Length: \xef\xbc\x95\r\n\r\nhello", 400),
    "cl negative": (POST + b"Content-Length: -1\r\n\r\nhello", 400),
    "cl empty": (POST + b"Content-Length: \r\n\r\nhello", 400),
    "cl list of two values": (POST + b"Content-Length: 5, 6\r\n\r\nhello", 400),
    "cl list with empty element": (POST + b"Content-Length: 5,,5\r\n\r\nhello", 400),
    "cl two numbers": (POST + b"Content-Length: 5 5\r\n\r\nhello", 400),
    "cl vertical tab": (POST + b"Content-Length:\x0b5\r\n\r\nhello", 400),
    "cl two headers differ": (POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400),
    "cl two headers, leading zero": (POST + b"Content-Length: 5\r\nContent-Length: 05\r\n\r\nhello", 400),
    "cl 26 digits": (POST + b"Content-Length: 99999999999999999999999999\r\n\r\nhello", 400),
    # Bare CR, NUL, obs-fold, malformed request lines.
    "bare cr in header value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\rb\r\n\r\n", 400),
    "bare cr before a line end": (b"GET / HTTP/1.1\r\n" + H + b"X: a\r\rY: b\r\n\r\n", 400),
    "bare cr as every line end": (b"GET / HTTP/1.1\rHost: x\r\r", 408),
    "nul in header value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\x00b\r\n\r\n", 400),
    "nul in header name": (b"GET / HTTP/1.1\r\n" + H + b"X\x00: a\r\n\r\n", 400),
    "obs-fold with tab": (b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n\tb\r\n\r\n", 400),
    "trailing space in request line": (b"GET / HTTP/1.1 \r\n" + H + b"\r\n", 400),
    "tabs in request line": (b"GET\t/\tHTTP/1.1\r\n" + H + b"\r\n", 400),
    "lower-case http version": (b"GET / http/1.1\r\n" + H + b"\r\n", 400),
    "empty header name": (b"GET / HTTP/1.1\r\n" + H + b": x\r\n\r\n", 400),
    "nul in host": (b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n", 400),
    "absolute-form without host": (b"GET http://other/p HTTP/1.1\r\n\r\n", 400),
    "bare cr in request target": (b"GET /\rx HTTP/1.1\r\n" + H + b"\r\n", 400),
    "nul in request target": (b"GET /\x00 HTTP/1.1\r\n" + H + b"\r\n", 400),
    "nul in method": (b"G\x00T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "double space in request line": (b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    "bare cr line ends, then a request": (b"GET / HTTP/1.1\rHost: x\r\r" + NEXT, 400),
    "host with a space": (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
}

REFUSED_BODIES: dict[str, tuple[bytes, Any]] = {
    # Chunk sizes: overflow must neither wrap around nor be trusted.
    "chunk size of 21 digits": (TE_POST + b"100000000000000000005\r\nhello\r\n0\r\n\r\n", 400),
    "chunk size 2**72-1 waits, then 408": (TE_POST + b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n" + NEXT, 408),
    "chunk size wrapping to 5 in 64 bits": (TE_POST + b"10000000000000005\r\nhello\r\n0\r\n\r\n" + NEXT, 408),
    "chunk size with leading space": (TE_POST + b" 5\r\nhello\r\n0\r\n\r\n", 400),
    "chunk size 0x5": (TE_POST + b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    "chunk size negative": (TE_POST + b"-5\r\nhello\r\n0\r\n\r\n", 400),
    "chunk data without crlf": (TE_POST + b"5\r\nhelloXX0\r\n\r\n", 400),
    "chunk lines ending in bare lf": (TE_POST + b"5\nhello\n0\n\n" + NEXT, 400),
    "chunk extension with bare lf": (TE_POST + b"5;a\nXX\r\nhello\r\n0\r\n\r\n", 400),
}


async def refused_then_closed(serve: Any, payload: bytes, status: int) -> list[str]:
    """Sends ``payload``; checks the one error, Connection: close, then EOF; returns the
    targets the handler saw."""
    seen: list[str] = []
    client = await (await serve(echo_recording(seen)))()
    await client.send(payload)
    response = await client.read_response()
    assert response.status == status
    assert response.header("connection") == "close"
    assert await client.read_to_eof() == b""
    return seen


@pytest.mark.parametrize("payload, status", REFUSED_HEADS.values(), ids=REFUSED_HEADS.keys())
async def test_ambiguous_head_gets_one_error_then_close_and_never_reaches_the_handler(
    serve, autojump_clock, caplog, payload, status
):
    """Nothing after the bad bytes is ever answered, the handler never sees the request, and
    nothing is logged above debug level."""
    with caplog.at_level(logging.DEBUG, logger="trio_httpchannel"):
        assert await refused_then_closed(serve, payload, status) == []
    assert [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG] == []


@pytest.mark.parametrize("payload, status", REFUSED_BODIES.values(), ids=REFUSED_BODIES.keys())
async def test_ambiguous_chunked_body_gets_one_error_then_close(serve, autojump_clock, payload, status):
    """The handler got the request (its head is fine) and then an error reading the body;
    the request pipelined after the bad body never reaches it."""
    assert await refused_then_closed(serve, payload, status) == ["/"]


ANSWERED_THEN_CLOSED: dict[str, Any] = {
    "pipelined after connection: close": (b"GET /1 HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n" + NEXT, [b"/1|"]),
    "pipelined after connection: CLOSE": (b"GET /1 HTTP/1.1\r\n" + H + b"Connection: CLOSE\r\n\r\n" + NEXT, [b"/1|"]),
    "pipelined after close in a list": (
        b"GET /1 HTTP/1.1\r\n" + H + b"Connection: keep-alive, close\r\n\r\n" + NEXT,
        [b"/1|"],
    ),
    "pipelined after close in a second header": (
        b"GET /1 HTTP/1.1\r\n" + H + b"Connection: keep-alive\r\nConnection: close\r\n\r\n" + NEXT,
        [b"/1|"],
    ),
    "pipelined after http/1.0": (b"GET /1 HTTP/1.0\r\n\r\n" + NEXT, [b"/1|"]),
    "pipelined after a closing upload": (
        b"POST /1 HTTP/1.1\r\n" + H + b"Connection: close\r\nContent-Length: 5\r\n\r\nhello" + NEXT,
        [b"/1|hello"],
    ),
    "pipelined after http/1.0 asking for not-keep-alive": (
        b"GET /1 HTTP/1.0\r\nConnection: not-keep-alive\r\n\r\n" + NEXT,
        [b"/1|"],
    ),
    "pipelined after http/1.0 with transfer-encoding": (
        b"POST /1 HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED + NEXT,
        [b"/1|hello"],
    ),
}


@pytest.mark.parametrize("payload, bodies", ANSWERED_THEN_CLOSED.values(), ids=ANSWERED_THEN_CLOSED.keys())
async def test_request_pipelined_after_close_is_never_answered(serve, autojump_clock, payload, bodies):
    """The closing request is answered with Connection: close, then EOF; the request pipelined
    behind it never reaches the handler."""
    seen: list[str] = []
    client = await (await serve(echo_recording(seen)))()
    await client.send(payload)
    for body in bodies:
        response = await client.read_response()
        assert (response.status, response.body) == (200, body)
    assert response.header("connection") == "close"
    assert await client.read_to_eof() == b""
    assert "/2" not in seen


async def test_unknown_framing_header_is_not_framing(serve, autojump_clock):
    """``Transfer_Encoding`` is just another header: the request has no body, and the chunked
    bytes after it are read (and refused) as the next request, never as its body."""
    seen: list[str] = []
    client = await (await serve(echo_recording(seen)))()
    await client.send(POST + b"Transfer_Encoding: chunked\r\n\r\n" + CHUNKED)
    response = await client.read_response()
    assert (response.status, response.body) == (200, b"/|")
    assert (await client.read_response()).status == 400
    assert await client.read_to_eof() == b""


TOLERATED: dict[str, tuple[bytes, bytes]] = {
    "te after a tab": (POST + b"Transfer-Encoding:\tchunked\r\n\r\n" + CHUNKED, b"/|hello"),
    "te upper-case": (POST + b"Transfer-Encoding: CHUNKED\r\n\r\n" + CHUNKED, b"/|hello"),
    "te after an empty list element": (POST + b"Transfer-Encoding: ,chunked\r\n\r\n" + CHUNKED, b"/|hello"),
    "te before an empty list element": (POST + b"Transfer-Encoding: chunked, \r\n\r\n" + CHUNKED, b"/|hello"),
    "cl with extra spaces": (POST + b"Content-Length:   5  \r\n\r\nhello", b"/|hello"),
    "cl with leading zeros": (POST + b"Content-Length: 005\r\n\r\nhello", b"/|hello"),
    "cl list of one value twice": (POST + b"Content-Length: 5, 5\r\n\r\nhello", b"/|hello"),
    "cl twice, same value": (POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", b"/|hello"),
    "get with a body that looks like a request": (
        b"GET / HTTP/1.1\r\n" + H + b"Content-Length: 30\r\n\r\nGET /smuggled HTTP/1.1\r\nX: y\r\n\r\n",
        b"/|GET /smuggled HTTP/1.1\r\nX: y\r\n",
    ),
    "chunk size with trailing space": (TE_POST + b"5 \r\nhello\r\n0\r\n\r\n", b"/|hello"),
    "content-length in the trailer": (
        TE_POST + b"5\r\nhello\r\n0\r\nContent-Length: 10\r\n\r\n",
        b"/|hello",
    ),
    "lf line ends": (b"GET / HTTP/1.1\nHost: x\n\n", b"/|"),
    "absolute-form target": (b"GET http://other/p HTTP/1.1\r\n" + H + b"\r\n", b"http://other/p|"),
    "asterisk-form target": (b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", b"*|"),
}


@pytest.mark.parametrize("payload, body", TOLERATED.values(), ids=TOLERATED.keys())
async def test_tolerated_variant_is_framed_as_sent_and_keeps_the_connection(serve, autojump_clock, payload, body):
    """A variant the RFCs let us accept: answered, its body framed exactly, and the requests
    pipelined behind it (and sent later) answered on the same connection."""
    client = await (await serve(echo_recording([])))()
    await client.send(payload + NEXT)
    assert (await client.read_response()).body == body
    assert (await client.read_response()).body == b"/2|"
    await client.send(b"GET /3 HTTP/1.1\r\n" + H + b"\r\n")
    response = await client.read_response()
    assert response.body == b"/3|"
    assert response.header("connection") is None
