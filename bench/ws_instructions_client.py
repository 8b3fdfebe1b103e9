"""The client of ``bench/ws_instructions.sh``: COUNT echoes of a 1 KiB binary message over
CONNECTIONS WebSockets to PORT. Each round sends one message on every WebSocket and reads every
echo before the next round (so each round asks the server the same work, whatever its speed)."""

from __future__ import annotations

import sys
import time

from bench.ws_clients import BINARY, MESSAGE, PING, PONG, WebSocketError, connect, masked_frame, next_frame


def open_all(port: int, connections: int) -> list:  # type: ignore[type-arg]
    """The WebSockets, once the server (slow to start under valgrind) listens."""
    for _ in range(600):
        try:
            return [connect(port, timeout=600) for _ in range(connections)]
        except ConnectionRefusedError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def main(port: int, count: int, connections: int) -> None:
    socks = open_all(port, connections)
    frame = masked_frame(BINARY, MESSAGE)
    buffers = [bytearray() for _ in socks]
    for _ in range(count // connections):
        for sock in socks:
            sock.sendall(frame)
        for sock, data in zip(socks, buffers):
            while True:
                parsed = next_frame(data)
                if parsed is None:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise WebSocketError("the server closed a WebSocket")
                    data += chunk
                    continue
                _, opcode, payload = parsed
                if opcode == PING:
                    sock.sendall(masked_frame(PONG, payload))
                    continue
                if payload != MESSAGE:
                    raise WebSocketError(f"a wrong echo: {payload[:20]!r}")
                break
    for sock in socks:
        sock.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
