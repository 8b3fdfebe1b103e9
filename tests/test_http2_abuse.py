"""HTTP/2 abuse and bad input, written as raw frames: each gets its answer (RST_STREAM on the
stream, or GOAWAY and a clean close), the server keeps serving others, and nothing is logged
as an error."""

from __future__ import annotations

import logging

import pytest
import trio
from h2.errors import ErrorCodes
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from trio_httpchannel import Request, Response

GET = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "example.com")]


async def hello(request: Request) -> Response:
    await request.read()
    return Response(200, body=b"hello")


@pytest.fixture(autouse=True)
def no_error_logged(caplog):
    """Whatever a client sends, the server logs no error and no traceback."""
    caplog.set_level(logging.DEBUG, logger="trio_httpchannel")
    yield
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []


async def goaway_of(raw) -> GoAwayFrame:
    """The GOAWAY the server sends, after which it closes."""
    goaway = await raw.until(GoAwayFrame)
    await raw.frames_to_eof()
    return goaway


async def test_streams_reset_faster_than_the_bound_get_goaway_enhance_your_calm(serve_h2):
    server = await serve_h2(hello, h2_max_resets_per_second=10)
    raw = await server.raw()
    await raw.handshake()
    frames = []
    for stream_id in range(1, 2 * 12, 2):
        frames += [raw.headers(stream_id, GET, end_stream=False), RstStreamFrame(stream_id, error_code=8)]
    await raw.send_frames(*frames)
    assert (await goaway_of(raw)).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    await server.wait_closed()


async def test_resets_within_the_bound_spread_over_time_are_served(serve_h2_memory, autojump_clock):
    server = await serve_h2_memory(hello, h2_max_resets_per_second=10)
    client = await server.connect()
    for _ in range(30):
        stream_id = await client.request("/", end=False)
        client.conn.reset_stream(stream_id, ErrorCodes.CANCEL)
        await client.flush()
        await trio.sleep(0.2)
    assert (await client.get("/")).status == 200


async def test_a_header_block_larger_than_max_header_length_gets_goaway(serve_h2):
    server = await serve_h2(hello, max_header_length=4096, max_request_line=4096)
    raw = await server.raw()
    await raw.handshake()
    block = raw.block(GET + [("x-big", "v" * 3000), ("x-big2", "w" * 3000)])
    first = HeadersFrame(1, data=block[:1000], flags=["END_STREAM"])
    rest = [ContinuationFrame(1, data=block[i : i + 1000]) for i in range(1000, len(block), 1000)]
    await raw.send_frames(first, *rest)
    assert (await goaway_of(raw)).error_code == ErrorCodes.ENHANCE_YOUR_CALM


async def test_a_flood_of_empty_continuation_frames_gets_goaway(serve_h2):
    server = await serve_h2(hello, h2_max_control_frames_per_second=50)
    raw = await server.raw()
    await raw.handshake()
    first = HeadersFrame(1, data=raw.block(GET)[:3], flags=["END_STREAM"])
    await raw.send_frames(first, *[ContinuationFrame(1, data=b"") for _ in range(60)])
    assert (await goaway_of(raw)).error_code == ErrorCodes.ENHANCE_YOUR_CALM


async def test_a_header_block_left_unfinished_gets_goaway_after_header_timeout(serve_h2_memory, autojump_clock):
    server = await serve_h2_memory(hello, header_timeout=5)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(HeadersFrame(1, data=raw.block(GET)[:3], flags=["END_STREAM"]))
    started = trio.current_time()
    goaway = await goaway_of(raw)
    assert goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert trio.current_time() - started == pytest.approx(5)


async def test_an_hpack_bomb_gets_goaway_before_it_inflates(serve_h2):
    server = await serve_h2(hello, h2_max_header_list_size=16384)
    raw = await server.raw()
    await raw.handshake()
    # One 4000-byte entry in the dynamic table, then a block of a byte per copy of it.
    await raw.send_frames(raw.headers(1, GET + [("x-bomb", "b" * 4000)]))
    index = bytes([0x80 | 62])
    bomb = HeadersFrame(3, data=raw.block(GET) + index * 1000, flags=["END_STREAM", "END_HEADERS"])
    await raw.send_frames(bomb)
    assert (await goaway_of(raw)).error_code == ErrorCodes.ENHANCE_YOUR_CALM


@pytest.mark.parametrize(
    "flood",
    [
        pytest.param(lambda: SettingsFrame(0), id="SETTINGS"),
        pytest.param(lambda: PingFrame(0, opaque_data=b"12345678"), id="PING"),
        pytest.param(lambda: WindowUpdateFrame(0, window_increment=1), id="WINDOW_UPDATE"),
        pytest.param(lambda: PriorityFrame(1, depends_on=0, stream_weight=15), id="PRIORITY"),
    ],
)
async def test_a_control_frame_flood_gets_goaway_enhance_your_calm(serve_h2, flood):
    server = await serve_h2(hello, h2_max_control_frames_per_second=100)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(*[flood() for _ in range(150)])
    assert (await goaway_of(raw)).error_code == ErrorCodes.ENHANCE_YOUR_CALM


async def test_a_flood_of_empty_data_frames_gets_goaway(serve_h2):
    never = trio.Event()

    async def handler(request: Request) -> Response:
        await never.wait()
        return Response(200)

    server = await serve_h2(handler, h2_max_control_frames_per_second=100)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(raw.headers(1, GET, end_stream=False), *[DataFrame(1, data=b"") for _ in range(150)])
    assert (await goaway_of(raw)).error_code == ErrorCodes.ENHANCE_YOUR_CALM


async def test_control_frames_within_the_bound_spread_over_time_are_answered(serve_h2_memory, autojump_clock):
    server = await serve_h2_memory(hello, h2_max_control_frames_per_second=10)
    client = await server.connect()
    for _ in range(40):
        await client.ping()
        await trio.sleep(0.2)
    assert (await client.get("/")).status == 200


async def test_window_updates_acknowledging_our_data_are_free(serve_h2):
    async def handler(request: Request) -> Response:
        return Response(200, body=b"d" * 2_000_000)

    server = await serve_h2(handler, h2_max_control_frames_per_second=5)
    client = await server.connect()
    for _ in range(3):
        response = await client.get("/")
        assert len(response.body) == 2_000_000


async def test_a_window_held_shut_resets_the_stream_after_send_timeout(serve_h2_memory, autojump_clock):
    async def handler(request: Request) -> Response:
        return Response(200, body=b"x" * 100_000)

    server = await serve_h2_memory(handler, send_timeout=30, timeout=1000)
    raw = await server.raw()
    await raw.handshake(INITIAL_WINDOW_SIZE=0)
    await raw.send_frames(raw.headers(1, GET))
    started = trio.current_time()
    reset = await raw.until(RstStreamFrame, 1)
    assert reset.error_code == ErrorCodes.CANCEL
    assert trio.current_time() - started == pytest.approx(30)
    await raw.send_frames(PingFrame(0, opaque_data=b"stillok!"))
    assert (await raw.until(PingFrame)).opaque_data == b"stillok!"


async def test_a_window_shut_again_by_settings_still_resets_after_send_timeout(serve_h2_memory, autojump_clock):
    """A SETTINGS frame wakes the streams its window holds; one that finds the window still
    shut waits on, its send_timeout still counted from when it was first held (found by the
    HTTP/2 fuzzer: the connection then waited with no timer at all)."""

    async def handler(request: Request) -> Response:
        return Response(200, body=b"x" * 100)

    server = await serve_h2_memory(handler, send_timeout=30, timeout=1000)
    raw = await server.raw()
    await raw.handshake(INITIAL_WINDOW_SIZE=0)
    await raw.send_frames(raw.headers(1, GET))
    started = trio.current_time()
    await trio.sleep(10)
    shut = SettingsFrame(0)
    shut.settings = {SettingsFrame.INITIAL_WINDOW_SIZE: 0}
    await raw.send_frames(shut)
    with trio.fail_after(100):
        reset = await raw.until(RstStreamFrame, 1)
    assert reset.error_code == ErrorCodes.CANCEL
    assert trio.current_time() - started == pytest.approx(30)


async def test_an_idle_connection_gets_goaway_no_error_after_timeout(serve_h2_memory, autojump_clock):
    server = await serve_h2_memory(hello, timeout=40)
    client = await server.connect()
    assert (await client.get("/")).status == 200
    done = trio.current_time()
    goaway = await client.until_terminated()
    assert goaway.error_code == ErrorCodes.NO_ERROR
    assert goaway.last_stream_id == 1
    assert trio.current_time() - done == pytest.approx(40)
    await server.wait_closed()


async def test_a_body_that_stalls_gets_408_after_body_timeout(serve_h2_memory, autojump_clock):
    server = await serve_h2_memory(hello, body_timeout=7)
    client = await server.connect()
    stream_id = await client.request("/", method="POST", end=False)
    await client.push(stream_id, b"partial")
    response = await client.response(stream_id)
    assert response.status == 408


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(GET + [(":foo", "bar")], id="unknown pseudo-header"),
        pytest.param(
            [(":path", "/"), (":method", "GET"), (":scheme", "http"), ("a", "b"), (":authority", "x")],
            id="pseudo after regular",
        ),
        pytest.param([(":method", "GET"), (":scheme", "http"), (":authority", "x")], id="no :path"),
        pytest.param(GET + [(":method", "POST")], id="repeated :method"),
        pytest.param(GET + [(":status", "200")], id="response pseudo-header"),
        pytest.param(GET + [("connection", "keep-alive")], id="connection"),
        pytest.param(GET + [("transfer-encoding", "chunked")], id="transfer-encoding"),
        pytest.param(GET + [("te", "gzip")], id="te other than trailers"),
        pytest.param(GET + [("Upper", "case")], id="upper-case name"),
        pytest.param(GET + [("x-bad", "a\r\nb")], id="CR LF in a value"),
        pytest.param(GET + [("host", "other.example")], id="host differing from :authority"),
    ],
)
async def test_a_malformed_request_gets_rst_stream_protocol_error_and_the_connection_goes_on(serve_h2, fields):
    server = await serve_h2(hello)
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(raw.headers(1, fields))
    assert (await raw.until(RstStreamFrame, 1)).error_code == ErrorCodes.PROTOCOL_ERROR
    await raw.send_frames(raw.headers(3, GET))
    answer = await raw.until(HeadersFrame, 3)
    assert (b":status", b"200") in raw.decode(answer)


async def test_more_fields_than_max_header_count_get_431(serve_h2):
    server = await serve_h2(hello, max_header_count=5)
    client = await server.connect()
    response = await client.get("/", headers=[(f"x-{i}", "v") for i in range(6)])
    assert response.status == 431


@pytest.mark.parametrize("body", [b"123456", b"1234"], ids=["longer", "shorter"])
async def test_a_body_not_matching_its_content_length_ends_the_connection(serve_h2, body):
    seen: list[object] = []

    async def handler(request: Request) -> Response:
        try:
            await request.read()
        except Exception as error:
            seen.append(error)
            raise
        return Response(200)

    server = await serve_h2(handler)
    raw = await server.raw()
    await raw.handshake()
    fields = [(":method", "POST"), (":path", "/"), (":scheme", "http"), (":authority", "x"), ("content-length", "5")]
    await raw.send_frames(raw.headers(1, fields, end_stream=False), DataFrame(1, data=body, flags=["END_STREAM"]))
    assert (await goaway_of(raw)).error_code == ErrorCodes.PROTOCOL_ERROR
    await server.wait_closed()


async def test_a_body_larger_than_max_body_size_gets_413(serve_h2):
    server = await serve_h2(hello, max_body_size=1000)
    client = await server.connect()
    response = await client.get("/", method="POST", body=b"b" * 5000)
    assert response.status == 413
    assert (await client.get("/")).status == 200


async def test_one_connection_misbehaving_leaves_the_others_served(serve_h2):
    server = await serve_h2(hello, h2_max_control_frames_per_second=10)
    good = await server.connect()
    raw = await server.raw()
    await raw.handshake()
    await raw.send_frames(*[PingFrame(0, opaque_data=b"12345678") for _ in range(50)])
    assert (await goaway_of(raw)).error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert (await good.get("/")).status == 200
