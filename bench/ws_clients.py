"""Raw-socket WebSocket clients of the benchmark: the echo load and many idle WebSockets.

``python -m bench.ws_clients PORT CONNECTIONS SECONDS`` opens CONNECTIONS WebSockets and, on
each, sends a 1 KiB binary message and waits for its echo, again and again, for SECONDS; it
prints one JSON line: messages echoed, seconds, messages per second, errors. It is a load tool
run like wrk (pinned to the load's CPU): one process, non-blocking sockets and a selector, the
frame built and masked once, each echo compared with the message sent. Pings are answered.

:func:`open_websockets` opens many WebSockets, each of which has exchanged one message (with
permessage-deflate when asked, so that the server holds its compression contexts), and leaves
them idle, for the memory measurement.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import socket
import sys
import time
import zlib

HOST = "127.0.0.1"
MESSAGE = os.urandom(1024)
BINARY, CLOSE, PING, PONG = 0x2, 0x8, 0x9, 0xA
RSV1 = 0x40
KEY = b"\x37\xfa\x21\x3d"


class WebSocketError(ConnectionError):
    """A refused handshake, a wrong echo or a connection closed early."""


def masked_frame(opcode: int, payload: bytes, first_bits: int = 0x80) -> bytes:
    """A client frame (FIN and ``first_bits``), masked with a fixed key."""
    size = len(payload)
    if size < 126:
        head = bytes([first_bits | opcode, 0x80 | size])
    else:
        head = bytes([first_bits | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    stream = (KEY * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")
    return head + KEY + masked


def handshake(deflate: bool) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /ws HTTP/1.1", f"Host: {HOST}", "Upgrade: websocket", "Connection: Upgrade"]
    lines += [f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if deflate:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def split_head(data: bytearray) -> bytes | None:
    """The response head at the start of ``data`` (removed from it), once it is whole; raises
    WebSocketError unless it is a 101."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(data[: end + 4])
    del data[: end + 4]
    if not head.startswith(b"HTTP/1.1 101 "):
        raise WebSocketError(f"the handshake was refused: {head[:100]!r}")
    return head


def next_frame(data: bytearray) -> tuple[int, int, bytes] | None:
    """The first frame in ``data`` (removed from it) as (first byte, opcode, payload)."""
    if len(data) < 2:
        return None
    size, start = data[1] & 0x7F, 2
    if size == 126:
        if len(data) < 4:
            return None
        size, start = int.from_bytes(data[2:4], "big"), 4
    elif size == 127:
        if len(data) < 10:
            return None
        size, start = int.from_bytes(data[2:10], "big"), 10
    if len(data) < start + size:
        return None
    first, payload = data[0], bytes(data[start : start + size])
    del data[: start + size]
    return first, first & 0x0F, payload


def connect(port: int, timeout: float = 30.0) -> socket.socket:
    """A blocking connection that has completed the handshake."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(handshake(deflate=False))
    data = bytearray()
    while split_head(data) is None:
        chunk = sock.recv(65536)
        if not chunk:
            raise WebSocketError("closed during the handshake")
        data += chunk
    if data:
        raise WebSocketError(f"bytes after the 101: {bytes(data[:50])!r}")
    return sock


def echo_load(port: int, connections: int, seconds: float) -> dict[str, float]:
    """Echo round trips of 1 KiB binary messages on ``connections`` WebSockets for ``seconds``."""
    socks = [connect(port) for _ in range(connections)]
    frame = masked_frame(BINARY, MESSAGE)
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, bytearray())
        sock.send(frame)
    echoed = errors = 0
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        for key, _ in selector.select(timeout=1.0):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            chunk = sock.recv(65536)
            if not chunk:
                raise WebSocketError(f"the server closed a connection after {echoed} echoes")
            key.data.extend(chunk)
            while (parsed := next_frame(key.data)) is not None:
                _, opcode, payload = parsed
                if opcode == PING:
                    sock.send(masked_frame(PONG, payload))
                elif opcode == CLOSE:
                    raise WebSocketError(f"the server closed a WebSocket: {payload!r}")
                elif payload == MESSAGE:
                    echoed += 1
                    sock.send(frame)
                else:
                    errors += 1
                    sock.send(frame)
    elapsed = time.perf_counter() - start
    for sock in socks:
        sock.close()
    return {"messages": echoed, "seconds": elapsed, "rate": echoed / elapsed, "errors": errors}


def open_websockets(
    port: int, count: int, deflate: bool, window: int = 50, timeout: float = 300.0
) -> tuple[list[socket.socket], int]:
    """``count`` open WebSockets to ``port``, each of which has exchanged one 1 KiB message (compressed
    when ``deflate`` and the server accepted the offer), and how many accepted it. At most
    ``window`` are being set up at once. The caller closes them."""
    ready: list[socket.socket] = []
    deflated = 0
    selector = selectors.DefaultSelector()
    deadline = time.monotonic() + timeout
    try:
        while len(ready) < count:
            while len(ready) + len(selector.get_map()) < count and len(selector.get_map()) < window:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.connect_ex((HOST, port))
                selector.register(sock, selectors.EVENT_WRITE, _Setup(deflate))
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ready)} of {count} WebSockets ready after {timeout:.0f} s")
            for key, _ in selector.select(timeout=1.0):
                setup: _Setup = key.data
                if setup.step(selector, key.fileobj):  # type: ignore[arg-type]
                    ready.append(key.fileobj)  # type: ignore[arg-type]
                    deflated += setup.deflated
                    selector.unregister(key.fileobj)
    except BaseException:
        for sock in ready + [key.fileobj for key in selector.get_map().values()]:
            sock.close()  # type: ignore[union-attr]
        raise
    finally:
        selector.close()
    return ready, deflated


class _Setup:
    """One WebSocket being opened by :func:`open_websockets`: connect, handshake, one echo."""

    def __init__(self, deflate: bool) -> None:
        self.deflate = deflate
        self.deflated = False
        self.data = bytearray()
        self.opened = False

    def step(self, selector: selectors.BaseSelector, sock: socket.socket) -> bool:
        """Advance; True once the echo has arrived."""
        if not self.opened and not self.data and selector.get_key(sock).events == selectors.EVENT_WRITE:
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                raise ConnectionError(error, f"connect: {os.strerror(error)}")
            sock.send(handshake(self.deflate))
            selector.modify(sock, selectors.EVENT_READ, self)
            return False
        chunk = sock.recv(65536)
        if not chunk:
            raise WebSocketError("closed before the echo")
        self.data += chunk
        if not self.opened:
            head = split_head(self.data)
            if head is None:
                return False
            self.opened = True
            self.deflated = b"permessage-deflate" in head.lower()
            sock.send(self._message())
        return next_frame(self.data) is not None

    def _message(self) -> bytes:
        if not self.deflated:
            return masked_frame(BINARY, MESSAGE)
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        compressed = (compressor.compress(MESSAGE) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        return masked_frame(BINARY, compressed, 0x80 | RSV1)


def main() -> None:
    port, connections, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(echo_load(port, connections, seconds)))


if __name__ == "__main__":
    main()
