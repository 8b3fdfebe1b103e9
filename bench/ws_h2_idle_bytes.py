"""Bytes of Python memory one idle WebSocket over HTTP/2 (RFC 8441) holds in the server, by
``tracemalloc``, as ``idle_bytes.py`` measures an idle keep-alive connection.

The server (an ``HTTPChannel`` echoing WebSockets, no keepalive pings) runs in this process; a
client process (h2's client side and wsproto's frame layer: no client program speaks RFC 8441)
opens CONNECTIONS HTTP/2 connections with STREAMS WebSockets each, echoes one 1 KiB message on
each and keeps them open. Once every task of the server is blocked, the difference between two
snapshots divided by the number of WebSockets is the cost of one (the connections' own share
included, spread over their WebSockets). Usage: python bench/ws_h2_idle_bytes.py [CONNECTIONS] [STREAMS]
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.held import held_snapshots  # noqa: E402
from trio_httpchannel import HTTPChannel, Request, Response  # noqa: E402
from trio_httpchannel.websocket import WebSocketRequest  # noqa: E402

_CLIENT = r"""
import socket, sys
import h2.config, h2.connection, h2.events
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage
port, connections, streams = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
held = []
for _ in range(connections):
    sock = socket.create_connection(("127.0.0.1", port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    while conn.outbound_flow_control_window < streams * 1100:  # the server's SETTINGS and window
        conn.receive_data(sock.recv(65536))
        sock.sendall(conn.data_to_send())
    echoed = {}
    for index in range(streams):
        stream_id = 1 + 2 * index
        conn.send_headers(stream_id, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                      (":path", "/"), (":authority", "idle"), ("sec-websocket-version", "13")])
        conn.send_data(stream_id, Connection(ConnectionType.CLIENT).send(BytesMessage(b"x" * 1024)))
        echoed[stream_id] = 0
    sock.sendall(conn.data_to_send())
    while sum(echoed.values()) < streams * (1024 + 4):
        for event in conn.receive_data(sock.recv(65536)):
            if isinstance(event, h2.events.DataReceived):
                echoed[event.stream_id] += len(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        sock.sendall(conn.data_to_send())
    held.append((sock, conn))
print("ready", flush=True)
sys.stdin.read()
"""


async def hello(request: Request) -> Response:
    return Response(200, [(b"content-type", b"text/plain")], b"Hello, world!")


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send(message)


async def measure(connections: int, streams: int) -> float:
    """Bytes an idle WebSocket over HTTP/2 holds, averaged over ``connections × streams``."""
    channel = HTTPChannel(hello, websocket_handler=echo, ws_ping_interval=None, ws_per_message_deflate=False)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        total = connections * streams
        arguments = [str(port), str(connections), str(streams)]
        before, after = await held_snapshots(_CLIENT, arguments, lambda: len(channel.websockets) >= total)
        nursery.cancel_scope.cancel()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return grown / (connections * streams)


def main() -> None:
    connections = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    streams = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    per_websocket = trio.run(measure, connections, streams)
    print(f"{per_websocket:.0f} bytes per idle WebSocket over HTTP/2 ({connections} connections x {streams})")


if __name__ == "__main__":
    main()
