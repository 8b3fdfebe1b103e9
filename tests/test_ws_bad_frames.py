"""Bad input on an open WebSocket, written as raw frames over a real socket, by the categories of
the Autobahn testsuite (its runner needs Python 2 and cannot run here): framing, pings and pongs,
reserved bits, opcodes, fragmentation, UTF-8, close codes, limits and compression. Each gets its
close code, then the server closes TCP, logs nothing above debug, and keeps serving others."""

from __future__ import annotations

import logging
import zlib
from typing import Any

import pytest
from conftest import (
    BINARY,
    CLOSE,
    CONTINUATION,
    DEFLATE,
    PING,
    PONG,
    RSV1,
    TEXT,
    Frame,
    deflated,
    http_handler,
    open_raw_websocket,
    read_frame,
    ws_close_frame,
    ws_echo,
    ws_frame,
)

MAX_SIZE = 4096


@pytest.fixture
async def connect(serve_tcp: Any) -> Any:
    return await serve_tcp(http_handler, websocket_handler=ws_echo, ws_ping_interval=None, ws_max_size=MAX_SIZE)


def masked(first: int, length_bytes: bytes, payload: bytes) -> bytes:
    """A frame with a hand-made length field (to break the length encoding rules); the payload
    is masked with a zero key."""
    return bytes([first]) + length_bytes + b"\0\0\0\0" + payload


async def exchange(connect: Any, data: bytes, *extra: str) -> tuple[list[Frame], Frame]:
    """Open a WebSocket, send ``data``, and read what comes back up to the server's close frame;
    then check the server closes TCP."""
    client = await connect()
    await open_raw_websocket(client, "/", *extra)
    await client.send(data)
    before = []
    while (frame := await read_frame(client)).opcode != CLOSE:
        before.append(frame)
    assert await client.read_to_eof() == b""
    return before, frame


BAD_INPUT = {
    # framing
    "unmasked frame": (ws_frame(TEXT, b"x", mask=False), 1002),
    "16-bit length for a short payload": (masked(0x81, bytes([0x80 | 126, 0, 5]), b"hello"), 1002),
    "64-bit length for a short payload": (masked(0x81, bytes([0x80 | 127]) + (5).to_bytes(8, "big"), b"hello"), 1002),
    "64-bit length with its top bit set": (
        masked(0x82, bytes([0x80 | 127]) + (1 << 63 | 70000).to_bytes(8, "big"), b""),
        1002,
    ),
    # pings and pongs
    "ping of 126 bytes": (ws_frame(PING, b"p" * 126), 1002),
    "fragmented ping": (ws_frame(PING, b"p", fin=False) + ws_frame(CONTINUATION, b"q"), 1002),
    "pong of 126 bytes": (ws_frame(PONG, b"p" * 126), 1002),
    # reserved bits
    "RSV1 without permessage-deflate": (ws_frame(TEXT, b"x", rsv=0b100), 1002),
    "RSV2": (ws_frame(TEXT, b"x", rsv=0b010), 1002),
    "RSV3": (ws_frame(TEXT, b"x", rsv=0b001), 1002),
    "all RSV bits on a ping": (ws_frame(PING, b"", rsv=0b111), 1002),
    # opcodes
    **{f"reserved data opcode {opcode:#x}": (ws_frame(opcode, b"x"), 1002) for opcode in range(3, 8)},
    **{f"reserved control opcode {opcode:#x}": (ws_frame(opcode, b""), 1002) for opcode in range(0xB, 0x10)},
    # fragmentation
    "continuation without a start": (ws_frame(CONTINUATION, b"x"), 1002),
    "a new message inside a fragmented one": (ws_frame(TEXT, b"a", fin=False) + ws_frame(TEXT, b"b"), 1002),
    "fragmented close": (ws_frame(CLOSE, b"\x03\xe8", fin=False), 1002),
    # UTF-8
    "invalid UTF-8": (ws_frame(TEXT, b"\xff"), 1007),
    "invalid UTF-8 in a later fragment": (ws_frame(TEXT, b"ok ", fin=False) + ws_frame(CONTINUATION, b"\xfe"), 1007),
    "overlong encoding": (ws_frame(TEXT, b"\xc0\xaf"), 1007),
    "surrogate half": (ws_frame(TEXT, b"\xed\xa0\x80"), 1007),
    "truncated code point at the end": (ws_frame(TEXT, b"\xe2\x82"), 1007),
    "close reason not UTF-8": (ws_close_frame(1000, b"\xff"), 1007),
    # close codes
    "close with a one-byte payload": (ws_frame(CLOSE, b"\x03"), 1002),
    **{
        f"close code {code}": (ws_close_frame(code), 1002)
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)
    },
    # limits
    "message over ws_max_size": (ws_frame(BINARY, b"x" * (MAX_SIZE + 1)), 1009),
    "fragments over ws_max_size together": (
        b"".join(ws_frame(BINARY if n == 0 else CONTINUATION, b"x" * 1500, fin=n == 2) for n in range(3)),
        1009,
    ),
}


@pytest.mark.parametrize("data, code", BAD_INPUT.values(), ids=BAD_INPUT.keys())
async def test_bad_input_gets_its_close_code_then_tcp_closes(connect, caplog, data, code):
    _, close = await exchange(connect, data)
    assert close.close_code == code
    assert not [record for record in caplog.records if record.levelno > logging.DEBUG]


BAD_COMPRESSION = {
    "compression bomb": (ws_frame(BINARY, deflated(b"\0" * (64 << 20)), rsv=RSV1), 1009),
    "compressed message inflating past ws_max_size": (ws_frame(TEXT, deflated(b"a" * (MAX_SIZE + 1)), rsv=RSV1), 1009),
    "RSV1 on a continuation frame": (ws_frame(TEXT, b"", fin=False) + ws_frame(CONTINUATION, b"", rsv=RSV1), 1002),
    "RSV1 on a control frame": (ws_frame(PING, b"", rsv=RSV1), 1002),
    "corrupt deflate data": (ws_frame(BINARY, b"\xff\xff\xff\xff", rsv=RSV1), 1007),
}


@pytest.mark.parametrize("data, code", BAD_COMPRESSION.values(), ids=BAD_COMPRESSION.keys())
async def test_bad_compressed_input_gets_its_close_code(connect, data, code):
    _, close = await exchange(connect, data, DEFLATE)
    assert close.close_code == code


async def replies(connect: Any, data: bytes, count: int) -> list[Frame]:
    """Open a WebSocket, send ``data`` and read ``count`` frames back; then close cleanly (the
    client's close comes only after the echoes: a close answered at once overtakes them)."""
    client = await connect()
    await open_raw_websocket(client)
    await client.send(data)
    frames = [await read_frame(client) for _ in range(count)]
    await client.send(ws_close_frame(1000))
    assert (await read_frame(client)).close_code == 1000
    assert await client.read_to_eof() == b""
    return frames


async def test_a_ping_of_125_bytes_is_answered_with_its_payload(connect):
    assert await replies(connect, ws_frame(PING, b"p" * 125), 1) == [(True, 0, PONG, b"p" * 125)]


async def test_an_unsolicited_pong_is_ignored(connect):
    frames = await replies(connect, ws_frame(PONG, b"?") + ws_frame(TEXT, b"still here"), 1)
    assert frames == [(True, 0, TEXT, b"still here")]


async def test_pings_between_fragments_are_answered_and_the_message_delivered(connect):
    frames = [
        ws_frame(TEXT, b"frag", fin=False),
        ws_frame(PING, b"1"),
        ws_frame(CONTINUATION, b"men", fin=False),
        ws_frame(PING, b"2"),
        ws_frame(CONTINUATION, b"ted"),
    ]
    answers = await replies(connect, b"".join(frames), 3)
    assert answers == [(True, 0, PONG, b"1"), (True, 0, PONG, b"2"), (True, 0, TEXT, b"fragmented")]


async def test_a_code_point_split_between_fragments_is_valid(connect):
    euro = "€".encode()
    frames = ws_frame(TEXT, euro[:1], fin=False) + ws_frame(CONTINUATION, euro[1:])
    assert await replies(connect, frames, 1) == [(True, 0, TEXT, euro)]


async def test_empty_messages_are_messages(connect):
    answers = await replies(connect, ws_frame(TEXT) + ws_frame(BINARY), 2)
    assert answers == [(True, 0, TEXT, b""), (True, 0, BINARY, b"")]


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
async def test_a_valid_close_code_is_echoed(connect, code):
    _, close = await exchange(connect, ws_close_frame(code, b"r" * 123))
    assert (close.close_code, close.close_reason) == (code, "r" * 123)


async def test_frames_after_the_clients_close_are_ignored(connect):
    before, close = await exchange(connect, ws_close_frame(1000) + ws_frame(TEXT, b"after") + ws_frame(0x3, b""))
    assert (before, close.close_code) == ([], 1000)


async def test_a_compressed_message_is_inflated_and_the_answer_compressed(connect):
    client = await connect()
    response = await open_raw_websocket(client, "/", DEFLATE)
    assert response.header("sec-websocket-extensions") == "permessage-deflate"
    await client.send(ws_frame(TEXT, deflated(b"zip " * 100), rsv=RSV1))
    answer = await read_frame(client)
    assert answer.rsv == RSV1
    assert zlib.decompressobj(-15).decompress(answer.payload + b"\x00\x00\xff\xff") == b"zip " * 100


async def test_a_bad_client_does_not_disturb_another(connect):
    good = await connect()
    await open_raw_websocket(good)
    await exchange(connect, ws_frame(TEXT, b"x", mask=False))
    await good.send(ws_frame(TEXT, b"unbothered"))
    assert await read_frame(good) == (True, 0, TEXT, b"unbothered")
