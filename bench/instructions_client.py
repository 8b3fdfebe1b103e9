"""The client of ``bench/instructions.sh``: COUNT keep-alive GETs on one connection to PORT,
DEPTH pipelined at a time, each answer read before the next batch."""

from __future__ import annotations

import socket
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
BODY = b"Hello, world!"


def connect(port: int) -> socket.socket:
    """Connect once the server (slow to start under valgrind) listens."""
    for _ in range(600):
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def main(port: int, count: int, depth: int) -> None:
    with connect(port) as sock:
        pending = b""
        for _ in range(count // depth):
            sock.sendall(REQUEST * depth)
            answered = 0
            while answered < depth:
                pending += sock.recv(65536)
                answered += pending.count(BODY)
                pending = pending[pending.rfind(BODY) + len(BODY) :] if BODY in pending else pending


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
