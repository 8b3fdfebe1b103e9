"""Bytes of Python memory one idle keep-alive connection holds in the server, by ``tracemalloc``.

The server (an ``HTTPChannel`` with the native hello-world app, served by ``Server`` as the
command line serves it, and as ``scripts/bench`` measures its RSS) runs in this process; a client
process opens COUNT connections, makes one request on each and keeps them open. Once every task
of the server is blocked, the difference between two ``tracemalloc`` snapshots, divided by
COUNT, is the cost of one idle connection: deterministic for the same code and Python, unlike
RSS, so a regression guard can compare it. Usage: python bench/idle_bytes.py [COUNT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.held import held_snapshots  # noqa: E402
from trio_httpchannel import HTTPChannel, Request, Response  # noqa: E402
from trio_httpchannel.server import Server  # noqa: E402

_CLIENT = r"""
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(count):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: idle\r\n\r\n")
    data = b""
    while not data.endswith(b"Hello, world!"):
        data += sock.recv(4096)
    held.append(sock)
print("ready", flush=True)
sys.stdin.read()
"""


async def hello(request: Request) -> Response:
    return Response(200, [(b"content-type", b"text/plain")], b"Hello, world!")


async def measure(count: int) -> float:
    """Bytes a connection holds, averaged over ``count`` idle keep-alive connections."""
    channel = HTTPChannel(hello)
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        await nursery.start(Server(channel).serve_listeners, listeners)
        port = listeners[0].socket.getsockname()[1]
        before, after = await held_snapshots(
            _CLIENT, [str(port), str(count)], lambda: channel.connection_count >= count
        )
        nursery.cancel_scope.cancel()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return grown / count


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(f"{trio.run(measure, count):.0f} bytes an idle connection ({count} connections)")


if __name__ == "__main__":
    main()
