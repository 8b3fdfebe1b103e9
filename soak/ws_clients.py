"""The soak's WebSocket client: one open WebSocket exchanging messages until a deadline.

It writes its frames itself (masked, as RFC 6455 asks of a client) and reads the server's,
answering the server's keepalive pings, so that it needs nothing but trio. Every echo is checked
against what was sent; at the deadline it closes with 1000 and expects the server's 1000 and
then the end of the connection.
"""

from __future__ import annotations

import base64
import os
import random

import trio

from soak.clients import HOST, Tally

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
SIZES = [10, 1000, 20000]


def frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame."""
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    elif size < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    key = os.urandom(4)
    stream = (key * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")
    return head + key + masked


class FrameReader:
    """Reads the server's frames (unmasked, unfragmented here: the echo server sends each
    message in one frame) off a stream, and answers its pings."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError(f"EOF with {bytes(self.buffer[:80])!r} buffered")
        self.buffer += data

    async def head(self) -> bytes:
        """The HTTP response head (the 101, or a refusal)."""
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self.buffer[: end + 4])
        del self.buffer[: end + 4]
        return head

    async def frame(self) -> tuple[int, bytes]:
        while True:
            while len(self.buffer) < 2:
                await self._fill()
            size, start = self.buffer[1] & 0x7F, 2
            if size == 126:
                while len(self.buffer) < 4:
                    await self._fill()
                size, start = int.from_bytes(self.buffer[2:4], "big"), 4
            elif size == 127:
                while len(self.buffer) < 10:
                    await self._fill()
                size, start = int.from_bytes(self.buffer[2:10], "big"), 10
            while len(self.buffer) < start + size:
                await self._fill()
            opcode, payload = self.buffer[0] & 0x0F, bytes(self.buffer[start : start + size])
            del self.buffer[: start + size]
            if opcode != PING:
                return opcode, payload
            await self.stream.send_all(frame(PONG, payload))

    async def eof(self) -> bool:
        """Whether the server closes after what was read."""
        try:
            await self._fill()
        except EOFError:
            return not self.buffer
        return False


def _handshake() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def websocket(port: int, deadline: float, tally: Tally, seed: int, *, think: float = 1.0) -> None:
    """One WebSocket: a message (text or binary, 10 bytes to 20 KB) every ``think`` seconds on
    average, each echo checked, then the close handshake."""
    rng = random.Random(seed)
    try:
        async with await trio.open_tcp_stream(HOST, port) as stream:
            reader = FrameReader(stream)
            await stream.send_all(_handshake())
            head = await reader.head()
            if not head.startswith(b"HTTP/1.1 101 "):
                tally.fail(f"WebSocket refused: {head[:40]!r}")
                return
            while trio.current_time() < deadline:
                opcode = rng.choice([TEXT, BINARY])
                payload = rng.randbytes(rng.choice(SIZES))
                if opcode == TEXT:
                    payload = payload.hex().encode()[: len(payload)]
                await stream.send_all(frame(opcode, payload))
                if await reader.frame() == (opcode, payload):
                    tally.ws_messages += 1
                else:
                    tally.fail(f"a WebSocket echo that is not the {len(payload)}-byte message sent")
                await trio.sleep(rng.uniform(0, 2 * think))
            await stream.send_all(frame(CLOSE, (1000).to_bytes(2, "big")))
            closing = await reader.frame()
            if closing == (CLOSE, (1000).to_bytes(2, "big")) and await reader.eof():
                tally.outcomes["websocket closed cleanly"] += 1
            else:
                tally.fail(f"the close handshake ended with {closing!r}")
    except (OSError, EOFError, trio.BrokenResourceError) as error:
        tally.fail(f"WebSocket lost: {error!r}")
