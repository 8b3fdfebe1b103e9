"""WebSocket on the wire for the tests: raw frames as a client writes them, frames as the server
writes them, and an independent client (the websockets package's own protocol implementation,
not wsproto)."""

from __future__ import annotations

import zlib
from typing import Any, NamedTuple

from _raw_client import RawClient, RawResponse
from websockets.trio.client import connect as websockets_connect

WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WS_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
"""The key and accept token of RFC 6455 section 1.3's example."""
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
RSV1 = 0b100
DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate"
"""The handshake line that offers permessage-deflate."""


def ws_upgrade(path: str = "/", *extra: str, key: str = WS_KEY, version: str = "13", method: str = "GET") -> bytes:
    """An opening handshake request for ``path``, ``extra`` header lines added."""
    lines = [f"{method} {path} HTTP/1.1", "Host: example.com", "Upgrade: websocket", "Connection: Upgrade"]
    lines += [f"Sec-WebSocket-Key: {key}", f"Sec-WebSocket-Version: {version}", *extra, "", ""]
    return "\r\n".join(lines).encode()


def ws_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bool = True) -> bytes:
    """One frame as a client writes it: masked (unless ``mask`` is false), ``rsv`` the three
    reserved bits (``RSV1`` marks a compressed message)."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mask_bit = 0x80 if mask else 0
    size = len(payload)
    if size < 126:
        head = bytes([first, mask_bit | size])
    elif size < 65536:
        head = bytes([first, mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, mask_bit | 127]) + size.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = b"\x37\xfa\x21\x3d"
    stream = (key * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")
    return head + key + masked


def ws_close_frame(code: int | None = None, reason: bytes = b"") -> bytes:
    return ws_frame(CLOSE, b"" if code is None else code.to_bytes(2, "big") + reason)


def deflated(data: bytes) -> bytes:
    """``data`` compressed as permessage-deflate sends a message (RFC 7692 section 7.2.1)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


class Frame(NamedTuple):
    """A frame as the server wrote it."""

    fin: bool
    rsv: int
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        assert self.opcode == CLOSE, self
        return int.from_bytes(self.payload[:2], "big") if self.payload else None

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode()


def parse_server_frame(data: bytes | bytearray) -> tuple[Frame, int] | None:
    """The first frame in ``data`` and its length, or ``None`` when it is incomplete."""
    if len(data) < 2:
        return None
    assert not data[1] & 0x80, "a server frame is never masked"
    size, offset = data[1] & 0x7F, 2
    if size == 126:
        size, offset = int.from_bytes(data[2:4], "big"), 4
    elif size == 127:
        size, offset = int.from_bytes(data[2:10], "big"), 10
    if len(data) < offset + size:
        return None
    frame = Frame(bool(data[0] & 0x80), data[0] >> 4 & 0b111, data[0] & 0x0F, bytes(data[offset : offset + size]))
    return frame, offset + size


async def read_frame(client: RawClient) -> Frame:
    """The next frame the server wrote to ``client``."""
    while (parsed := parse_server_frame(client.buffer)) is None:
        if not await client.fill():
            raise EOFError(f"connection closed before a whole frame; got {bytes(client.buffer)!r}")
    frame, size = parsed
    client.take(size)
    return frame


async def open_raw_websocket(client: RawClient, path: str = "/", *extra: str) -> RawResponse:
    """Send a handshake for ``path`` and read the ``101``."""
    await client.send(ws_upgrade(path, *extra))
    response = await client.read_head()
    assert response.status == 101, response
    return response


def websockets_client(client: RawClient, path: str = "/", **options: Any) -> Any:
    """``async with websockets_client(client, "/path") as ws``: the websockets package's trio
    client over ``client``'s stream. Its own keepalive is off unless ``ping_interval`` is given."""
    options.setdefault("ping_interval", None)
    return websockets_connect(f"ws://127.0.0.1{path}", stream=client.stream, proxy=None, **options)
