"""HTTP/2 by the categories of h2spec (which cannot run here), as raw frames: the preface, frame
sizes, stream states, flow control, HPACK, SETTINGS, PING, RST_STREAM, GOAWAY; and the graceful
GOAWAY of a server shutting down. A connection error gets GOAWAY with its code and a clean
close, a stream error RST_STREAM on that stream while the connection goes on."""

from __future__ import annotations

import logging
import struct

import pytest
import trio
from h2.errors import ErrorCodes
from hyperframe.frame import (
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
)

from trio_httpchannel import Request, Response

GET = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "example.com")]
POST = [(":method", "POST"), (":path", "/"), (":scheme", "http"), (":authority", "example.com")]


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame as bytes, whatever its type, length or payload."""
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream_id) + payload


DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def headers_block(raw, stream_id, fields=GET, flags=END_STREAM | END_HEADERS) -> bytes:
    return frame(HEADERS, flags, stream_id, raw.block(fields))


async def hello(request: Request) -> Response:
    await request.read()
    return Response(200, body=b"hello")


@pytest.fixture(autouse=True)
def no_error_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="trio_httpchannel")
    yield
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []


CONNECTION_ERRORS = {
    # frame sizes
    "DATA over SETTINGS_MAX_FRAME_SIZE": (
        lambda raw: headers_block(raw, 1, POST, END_HEADERS) + frame(DATA, 0, 1, b"x" * 16385),
        ErrorCodes.FRAME_SIZE_ERROR,
    ),
    "PING of 7 bytes": (lambda raw: frame(PING, 0, 0, b"1234567"), ErrorCodes.FRAME_SIZE_ERROR),
    "RST_STREAM of 3 bytes": (
        lambda raw: headers_block(raw, 1, GET, END_HEADERS) + frame(RST_STREAM, 0, 1, b"\0\0\0"),
        ErrorCodes.FRAME_SIZE_ERROR,
    ),
    # RFC 9113 section 6.5 asks FRAME_SIZE_ERROR here, and section 4.3 COMPRESSION_ERROR for a
    # block that cannot be decoded; h2 sends PROTOCOL_ERROR for both (it queues its GOAWAY
    # itself), so those two are pinned as h2 answers them.
    "SETTINGS ACK with a payload": (
        lambda raw: frame(SETTINGS, ACK, 0, b"\0\x03\0\0\0\x01"),
        ErrorCodes.PROTOCOL_ERROR,
    ),
    # stream states
    "DATA on an idle stream": (lambda raw: frame(DATA, 0, 1, b"x"), ErrorCodes.PROTOCOL_ERROR),
    "HEADERS on stream 0": (lambda raw: headers_block(raw, 0), ErrorCodes.PROTOCOL_ERROR),
    "an even stream id from the client": (lambda raw: headers_block(raw, 2), ErrorCodes.PROTOCOL_ERROR),
    "a stream id lower than one before": (
        lambda raw: headers_block(raw, 5) + headers_block(raw, 3),
        ErrorCodes.PROTOCOL_ERROR,
    ),
    "RST_STREAM on an idle stream": (lambda raw: frame(RST_STREAM, 0, 1, b"\0\0\0\x08"), ErrorCodes.PROTOCOL_ERROR),
    "CONTINUATION without HEADERS": (lambda raw: frame(CONTINUATION, END_HEADERS, 1, b""), ErrorCodes.PROTOCOL_ERROR),
    "another frame inside a header block": (
        lambda raw: frame(HEADERS, END_STREAM, 1, raw.block(GET)) + frame(PING, 0, 0, b"12345678"),
        ErrorCodes.PROTOCOL_ERROR,
    ),
    # flow control
    "WINDOW_UPDATE of 0 on the connection": (
        lambda raw: frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)),
        ErrorCodes.PROTOCOL_ERROR,
    ),
    "a connection window grown past 2^31-1": (
        lambda raw: frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1)),
        ErrorCodes.FLOW_CONTROL_ERROR,
    ),
    # HPACK
    "an HPACK index out of the table": (
        lambda raw: frame(HEADERS, END_STREAM | END_HEADERS, 1, b"\xff\x7f"),
        ErrorCodes.PROTOCOL_ERROR,
    ),
    # SETTINGS
    "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1": (
        lambda raw: frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 2**31)),
        ErrorCodes.FLOW_CONTROL_ERROR,
    ),
    "SETTINGS_ENABLE_PUSH of 2": (
        lambda raw: frame(SETTINGS, 0, 0, struct.pack(">HI", 2, 2)),
        ErrorCodes.PROTOCOL_ERROR,
    ),
    "SETTINGS_MAX_FRAME_SIZE under 16384": (
        lambda raw: frame(SETTINGS, 0, 0, struct.pack(">HI", 5, 16383)),
        ErrorCodes.PROTOCOL_ERROR,
    ),
    "SETTINGS on a stream": (lambda raw: frame(SETTINGS, 0, 1, b""), ErrorCodes.PROTOCOL_ERROR),
    # PING
    "PING on a stream": (lambda raw: frame(PING, 0, 1, b"12345678"), ErrorCodes.PROTOCOL_ERROR),
}


@pytest.mark.parametrize("send, code", CONNECTION_ERRORS.values(), ids=CONNECTION_ERRORS.keys())
async def test_a_connection_error_gets_goaway_with_its_code_and_a_clean_close(serve_h2, send, code):
    server = await serve_h2(hello)
    raw = await server.raw()
    await raw.handshake()
    await raw.send(send(raw))
    goaway = await raw.until(GoAwayFrame)
    assert goaway.error_code == code
    await raw.frames_to_eof()
    await server.wait_closed()


STREAM_ERRORS = {
    "HEADERS on a half-closed stream": (
        lambda raw: (
            headers_block(raw, 1, POST, END_HEADERS)
            + frame(DATA, END_STREAM, 1, b"")
            + frame(HEADERS, END_HEADERS, 1, raw.block([("x-late", "1")]))
        ),
        1,
        ErrorCodes.STREAM_CLOSED,
    ),
}


@pytest.mark.parametrize("send, stream_id, code", STREAM_ERRORS.values(), ids=STREAM_ERRORS.keys())
async def test_a_stream_error_resets_the_stream_and_the_connection_goes_on(serve_h2, send, stream_id, code):
    never = trio.Event()

    async def handler(request: Request) -> Response:
        if request.method == "POST":
            await never.wait()
        return Response(200, body=b"hello")

    server = await serve_h2(handler)
    raw = await server.raw()
    await raw.handshake()
    await raw.send(send(raw))
    assert (await raw.until(RstStreamFrame, stream_id)).error_code == code
    await raw.send_frames(raw.headers(7, GET))
    assert (b":status", b"200") in raw.decode(await raw.until(HeadersFrame, 7))


async def test_data_in_flight_on_a_refused_stream_is_ignored_not_reset_again(serve_h2):
    async def handler(request: Request) -> Response:
        return Response(200, body=await request.read())

    server = await serve_h2(handler, h2_max_concurrent_streams=1)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(raw.headers(1, POST, end_stream=False), raw.headers(3, POST, end_stream=False))
    assert (await raw.until(RstStreamFrame, 3)).error_code == ErrorCodes.REFUSED_STREAM
    await raw.send_frames(DataFrame(3, data=b"x" * 1000), DataFrame(1, data=b"done", flags=["END_STREAM"]))
    seen = []
    while not (seen and isinstance(seen[-1], DataFrame) and "END_STREAM" in seen[-1].flags):
        seen.append(await raw.frame())
    assert [f for f in seen if isinstance(f, RstStreamFrame)] == []
    assert seen[-1].stream_id == 1 and seen[-1].data == b"done"


async def test_data_after_the_client_reset_its_stream_is_a_stream_error(serve_h2):
    never = trio.Event()

    async def handler(request: Request) -> Response:
        await never.wait()
        return Response(200)

    server = await serve_h2(handler)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(raw.headers(1, POST, end_stream=False), RstStreamFrame(1, error_code=ErrorCodes.CANCEL))
    await raw.send_frames(DataFrame(1, data=b"late"), PingFrame(0, opaque_data=b"roundtr1"))
    assert (await raw.until(RstStreamFrame, 1)).error_code == ErrorCodes.STREAM_CLOSED


async def test_a_stream_reset_in_the_same_read_that_opens_it_over_the_limit_leaves_the_rest_served(serve_h2, caplog):
    async def handler(request: Request) -> Response:
        return Response(200, body=await request.read())

    server = await serve_h2(handler, h2_max_concurrent_streams=1)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(
        raw.headers(1, POST, end_stream=False), raw.headers(3, GET), RstStreamFrame(3, error_code=ErrorCodes.CANCEL)
    )
    await raw.send_frames(DataFrame(1, data=b"still here", flags=["END_STREAM"]))
    assert (await raw.until(DataFrame, 1)).data == b"still here"
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_a_stream_h2_resets_for_data_after_its_end_is_over_and_the_connection_goes_on(serve_h2, caplog):
    started = trio.Event()
    cancelled = trio.Event()

    async def handler(request: Request) -> Response:
        if request.target == "/slow":
            started.set()
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                cancelled.set()
                raise
        return Response(200, body=b"hello")

    server = await serve_h2(handler)
    raw = await server.raw()
    await raw.handshake()
    slow = [(":method", "GET"), (":path", "/slow"), (":scheme", "http"), (":authority", "example.com")]
    await raw.send_frames(raw.headers(1, slow))
    await started.wait()
    await raw.send_frames(DataFrame(1, data=b"after its end"))
    assert (await raw.until(RstStreamFrame, 1)).error_code == ErrorCodes.STREAM_CLOSED
    await raw.send_frames(raw.headers(3, GET))
    assert (b":status", b"200") in raw.decode(await raw.until(HeadersFrame, 3))
    with trio.fail_after(10):
        await cancelled.wait()
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_an_invalid_preface_is_answered_by_http11_505_and_closed(serve_h2):
    server = await serve_h2(hello)
    raw = await server.raw()
    await raw.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    answer = await raw.stream.receive_some(65536)
    assert answer.startswith(b"HTTP/1.1 505 ")


async def test_unknown_frame_types_are_ignored(serve_h2):
    server = await serve_h2(hello)
    raw = await server.raw()
    await raw.handshake()
    await raw.send(frame(0x42, 0xFF, 0, b"whatever") + frame(PING, 0, 0, b"stillok!"))
    assert (await raw.until(PingFrame)).opaque_data == b"stillok!"


async def test_a_client_goaway_ends_the_connection_quietly(serve_h2):
    server = await serve_h2(hello)
    client = await server.connect()
    assert (await client.get("/")).status == 200
    client.conn.close_connection()
    await client.flush()
    while not client.eof:
        await client.receive()
    await client.stream.aclose()
    await server.wait_closed()


async def test_shutdown_sends_goaway_lets_streams_finish_and_refuses_new_ones(serve_h2):
    started = trio.Event()
    release = trio.Event()

    async def handler(request: Request) -> Response:
        started.set()
        await release.wait()
        return Response(200, body=b"finished")

    server = await serve_h2(handler)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(raw.headers(1, GET))
    await started.wait()
    server.channel.shutdown()
    goaway = await raw.until(GoAwayFrame)
    assert (goaway.error_code, goaway.last_stream_id) == (ErrorCodes.NO_ERROR, 1)
    await raw.send_frames(raw.headers(3, GET))
    assert (await raw.until(RstStreamFrame, 3)).error_code == ErrorCodes.REFUSED_STREAM
    release.set()
    assert (b":status", b"200") in raw.decode(await raw.until(HeadersFrame, 1))
    data = await raw.until(DataFrame, 1)
    assert (data.data, "END_STREAM" in data.flags) == (b"finished", True)
    rest = await raw.frames_to_eof()
    assert [(f.error_code, f.last_stream_id) for f in rest if isinstance(f, GoAwayFrame)] == [(ErrorCodes.NO_ERROR, 1)]
    await server.wait_closed()


async def test_shutdown_closes_an_idle_connection_at_once(serve_h2):
    server = await serve_h2(hello)
    client = await server.connect()
    assert (await client.get("/")).status == 200
    server.channel.shutdown()
    goaway = await client.until_terminated()
    assert (goaway.error_code, goaway.last_stream_id) == (ErrorCodes.NO_ERROR, 1)
    await server.wait_closed()
