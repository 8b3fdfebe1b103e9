"""Bytes of Python memory one idle WebSocket holds in the server, by ``tracemalloc``.

The server (an ``HTTPChannel`` whose WebSocket handler accepts and echoes, natively or as the
ASGI app of ``bench.apps``) runs in this process; a client process (``bench.ws_clients``) opens
COUNT WebSockets, exchanges one 1 KiB message on each (compressed with ``--deflate``) and keeps
them open. Once every task of the server is blocked, the difference between two ``tracemalloc``
snapshots, divided by COUNT, is the cost of one idle WebSocket: deterministic for the same code
and Python, unlike RSS, as ``bench/idle_bytes.py`` is for an idle keep-alive connection.
Usage: python bench/ws_idle_bytes.py [COUNT] [--asgi] [--deflate] [--top N]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tracemalloc
from pathlib import Path

import trio
import trio.testing

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.apps import asgi_websocket_app, native_websocket_app  # noqa: E402
from bench.held import held_snapshots  # noqa: E402
from trio_httpchannel import HTTPChannel  # noqa: E402
from trio_httpchannel.asgi import ASGIHandler  # noqa: E402

_CLIENT = r"""
import sys
from bench.ws_clients import open_websockets
port, count, deflate = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
held, deflated = open_websockets(port, count, deflate)
print("ready", deflated, flush=True)
sys.stdin.read()
"""


async def measure(count: int, asgi: bool, deflate: bool, top: int) -> float:
    """Bytes a WebSocket holds, averaged over ``count`` idle ones."""
    handler = ASGIHandler(asgi_websocket_app) if asgi else native_websocket_app
    channel = HTTPChannel(handler)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        arguments = [str(port), str(count), "1" if deflate else "0"]
        before, after = await held_snapshots(
            _CLIENT, arguments, lambda: len(channel.websockets) >= count, frames=25 if top else 1, cwd=REPO
        )
        nursery.cancel_scope.cancel()
    if top:
        _print_sites(after.compare_to(before, "traceback"), count, top)
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return grown / count


def _print_sites(stats: list[tracemalloc.StatisticDiff], count: int, top: int) -> None:
    """The ``top`` lines of the server's own code under which the most memory was allocated
    (the innermost frame of ``trio_httpchannel`` or ``bench`` in each traceback)."""
    sites: dict[str, list[float]] = {}
    for stat in stats:
        ours = [
            frame for frame in stat.traceback if "trio_httpchannel/" in frame.filename or "/bench/" in frame.filename
        ]
        frame = ours[-1] if ours else stat.traceback[-1]
        key = f"{frame.filename.rsplit('/', 2)[-2]}/{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
        site = sites.setdefault(key, [0.0, 0.0])
        site[0] += stat.size_diff / count
        site[1] += stat.count_diff / count
    for key, (size, blocks) in sorted(sites.items(), key=lambda item: -item[1][0])[:top]:
        print(f"{size:8.0f} B {blocks:5.1f} blocks  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=1000)
    parser.add_argument("--asgi", action="store_true", help="the ASGI echo app, not the native handler")
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate (and so hold zlib's state)")
    parser.add_argument("--top", type=int, default=0, help="print the N largest allocation sites")
    arguments = parser.parse_args()
    grown = trio.run(measure, arguments.count, arguments.asgi, arguments.deflate, arguments.top)
    print(f"{grown:.0f} bytes an idle WebSocket ({arguments.count} WebSockets)")


if __name__ == "__main__":
    main()
