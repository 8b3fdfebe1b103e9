"""The server under soak: ``HTTPChannel(echo, websocket_handler=echo_websocket, ...)`` on a
loopback port, served by ``trio_httpchannel.Server`` (its accept loop and EMFILE policy).

Prints ``port N SERVER`` on stdout once listening; logs (INFO and up, and anything uncaught) go to
stderr, which the driver sends to the log it searches for tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import resource

import trio

from trio_httpchannel import HTTPChannel, Request, Response, Server
from trio_httpchannel.websocket import WebSocketRequest


async def echo(request: Request) -> Response:
    """POST: the body back. Anything else: the query string back."""
    if request.method == "POST":
        return Response(200, [], await request.read())
    return Response(200, [], request.query.encode())


async def echo_websocket(request: WebSocketRequest) -> None:
    """Every message back."""
    ws = await request.accept()
    async for message in ws:
        await ws.send(message)


async def main(args: argparse.Namespace) -> None:
    channel = HTTPChannel(
        echo,
        websocket_handler=echo_websocket,
        timeout=args.timeout,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        linger_timeout=args.linger_timeout,
        max_body_size=args.max_body_size,
    )
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    print("port", port, "trio_httpchannel.Server", flush=True)
    await Server(channel).serve_listeners(listeners)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--header-timeout", type=float, default=10.0)
    parser.add_argument("--body-timeout", type=float, default=10.0)
    parser.add_argument("--linger-timeout", type=float, default=5.0)
    parser.add_argument("--max-body-size", type=int, default=256 * 1024)
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    trio.run(main, parse_args())
