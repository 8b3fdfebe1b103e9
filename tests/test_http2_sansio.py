"""The sans-io parts of HTTP/2, without sockets: the guard walking frame headers however the
bytes are split, the request header checks, and how a connection says it speaks HTTP/2."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame, PingFrame, SettingsFrame, WindowUpdateFrame

from trio_httpchannel import ProtocolError, Response, Settings
from trio_httpchannel.http2._guard import Abuse, InboundGuard
from trio_httpchannel.http2._head import MalformedRequest, parse_request_head, response_fields
from trio_httpchannel.http2._negotiation import PREFACE, Spoken, opening

BLOCK = b"\x82\x86\x84\x41\x8a\x08\x9d\x5c\x0b\x81\x70\xdc\x78\x0f\x03"  # a GET's HPACK block


def stream_of_frames(block_sizes: list[int]) -> bytes:
    """The preface, SETTINGS, a header block in pieces of ``block_sizes``, DATA and a PING."""
    block = (BLOCK * 2000)[: sum(block_sizes)]
    pieces = []
    start = 0
    for size in block_sizes:
        pieces.append(block[start : start + size])
        start += size
    frames = [SettingsFrame(0), HeadersFrame(1, data=pieces[0])]
    frames += [ContinuationFrame(1, data=piece) for piece in pieces[1:]]
    frames[-1].flags.add("END_HEADERS")
    frames += [DataFrame(1, data=b"d" * 100, flags=["END_STREAM"]), PingFrame(0, opaque_data=b"12345678")]
    return PREFACE + b"".join(frame.serialize() for frame in frames)


@pytest.mark.parametrize("split", [1, 2, 7, 9, 10, 24, 25, 33, 1000])
def test_the_guard_walks_frames_the_same_however_the_bytes_are_split(split):
    data = stream_of_frames([500, 500, 500])
    guard = InboundGuard(Settings(max_header_length=1500, max_request_line=1500), 0.0)
    for start in range(0, len(data), split):
        guard.feed(data[start : start + split], 0.0)
    assert guard.block_opened is None


@pytest.mark.parametrize("split", [1, 9, 100, 100_000])
def test_the_guard_stops_a_header_block_one_byte_too_long_however_split(split):
    data = stream_of_frames([500, 500, 501])
    guard = InboundGuard(Settings(max_header_length=1500, max_request_line=1500), 0.0)
    with pytest.raises(Abuse, match="max_header_length"):
        for start in range(0, len(data), split):
            guard.feed(data[start : start + split], 0.0)


def test_the_guard_knows_when_an_unfinished_header_block_opened():
    guard = InboundGuard(Settings(), 0.0)
    guard.feed(PREFACE + HeadersFrame(1, data=BLOCK[:4]).serialize(), 3.5)
    assert guard.block_opened == 3.5
    guard.feed(ContinuationFrame(1, data=BLOCK[4:], flags=["END_HEADERS"]).serialize(), 4.0)
    assert guard.block_opened is None


def test_the_control_frame_budget_refills_with_time():
    guard = InboundGuard(Settings(h2_max_control_frames_per_second=10), 0.0)
    ping = PingFrame(0, opaque_data=b"12345678").serialize()
    guard.feed(PREFACE + ping * 10, 0.0)
    with pytest.raises(Abuse):
        guard.feed(ping, 0.0)
    guard = InboundGuard(Settings(h2_max_control_frames_per_second=10), 0.0)
    guard.feed(PREFACE + ping * 10, 0.0)
    guard.feed(ping * 5, 0.5)


def test_window_updates_are_free_for_data_frames_we_sent():
    guard = InboundGuard(Settings(h2_max_control_frames_per_second=1), 0.0)
    guard.data_frames_sent(50)
    update = WindowUpdateFrame(1, window_increment=100).serialize()
    guard.feed(PREFACE + update * 101, 0.0)
    with pytest.raises(Abuse):
        guard.feed(update, 0.0)


GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.com:8443"), (b":path", b"/a?b")]


def test_a_request_head_puts_the_authority_first_as_host():
    head = parse_request_head(GET + [(b"accept", b"*/*")], max_header_count=10)
    assert (head.method, head.target) == ("GET", "/a?b")
    assert head.fields == [(b"host", b"example.com:8443"), (b"accept", b"*/*")]


def test_a_request_head_without_authority_keeps_its_host_field():
    fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b"host", b"h.example")]
    assert parse_request_head(fields, max_header_count=10).fields == [(b"host", b"h.example")]


def test_options_asterisk_is_a_target():
    options = [(b":method", b"OPTIONS"), (b":scheme", b"http"), (b":path", b"*"), (b":authority", b"x")]
    assert parse_request_head(options, max_header_count=10).target == "*"


EXTENDED = [
    (b":method", b"CONNECT"),
    (b":protocol", b"websocket"),
    (b":scheme", b"https"),
    (b":path", b"/chat?room=1"),
    (b":authority", b"example.com"),
]


def test_an_extended_connect_is_a_request_for_its_path_naming_its_protocol():
    head = parse_request_head(EXTENDED, max_header_count=10, extended_connect=True)
    assert (head.method, head.target, head.protocol) == ("CONNECT", "/chat?room=1", "websocket")
    assert head.fields == [(b"host", b"example.com")]


def test_protocol_is_malformed_where_the_connect_protocol_was_not_advertised():
    with pytest.raises(MalformedRequest, match="unknown pseudo-header"):
        parse_request_head(EXTENDED, max_header_count=10)


def test_protocol_on_a_method_other_than_connect_is_malformed():
    fields = [(b":method", b"GET"), *EXTENDED[1:]]
    with pytest.raises(MalformedRequest, match="not a CONNECT"):
        parse_request_head(fields, max_header_count=10, extended_connect=True)


def test_a_plain_connect_is_answered_501_as_over_http1():
    connect = [(b":method", b"CONNECT"), (b":authority", b"x:443")]
    with pytest.raises(ProtocolError) as raised:
        parse_request_head(connect, max_header_count=10, extended_connect=True)
    assert raised.value.status == 501


@pytest.mark.parametrize(
    "field", [(b"x-bad", b"a\x00b"), (b"X-Upper", b"v"), (b"connection", b"close"), (b"te", b"gzip")]
)
def test_a_malformed_field_is_refused_every_time_though_checked_fields_are_remembered(field):
    parse_request_head(GET + [(b"x-bad", b"fine"), (b"te", b"trailers")], max_header_count=10)
    for _ in range(2):
        with pytest.raises(MalformedRequest):
            parse_request_head(GET + [field], max_header_count=10)


def test_a_response_header_refused_once_is_refused_again_though_checked_ones_are_remembered():
    assert (b"x-ok", b"v") in response_fields(Response(200, [("X-OK", " v ")]), "GET").fields
    for _ in range(2):
        with pytest.raises(ValueError, match="illegal value"):
            response_fields(Response(200, [("x-ok", "v\r\nx: y")]), "GET")


def test_a_path_that_is_neither_absolute_nor_asterisk_is_malformed():
    with pytest.raises(MalformedRequest, match=":path"):
        parse_request_head([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"relative")], max_header_count=10)


async def test_opening_reads_a_preface_split_across_writes():
    client, server = trio.testing.memory_stream_pair()
    await client.send_all(PREFACE[:5])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, PREFACE[5:] + b"rest")
        assert await opening(server, 10) == (Spoken.HTTP2, PREFACE + b"rest")


async def test_opening_gives_http11_bytes_back_at_the_first_difference():
    client, server = trio.testing.memory_stream_pair()
    await client.send_all(b"PRI")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, b"NT / HTTP/1.1\r\n")
        assert await opening(server, 10) == (Spoken.HTTP1, b"PRINT / HTTP/1.1\r\n")


async def test_opening_on_a_silent_client_gives_up_after_the_timeout(autojump_clock):
    _, server = trio.testing.memory_stream_pair()
    assert await opening(server, 5) is None
    assert trio.current_time() == 5


async def test_opening_on_a_preface_stalled_past_header_timeout_says_so(autojump_clock):
    client, server = trio.testing.memory_stream_pair()
    await client.send_all(PREFACE[:8])
    assert await opening(server, 5, 20) == (Spoken.STALLED, PREFACE[:8])
    assert trio.current_time() == 20
