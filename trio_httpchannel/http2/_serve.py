"""The one entry point the HTTP/1.1 channel calls to hand a connection over to HTTP/2."""

from __future__ import annotations

import trio

from .._config import Settings
from ._connection import Handler, HTTP2Connection, ResponseHook
from ._exchanges import Upgraded

__all__ = ["serve_http2"]


async def serve_http2(
    stream: trio.abc.Stream,
    handler: Handler,
    settings: Settings,
    *,
    on_response: ResponseHook | None = None,
    received: bytes = b"",
    upgraded: Upgraded | None = None,
) -> None:
    """Serve HTTP/2 on ``stream`` until the connection ends, then close it.

    ``received`` are the bytes already read (the preface, and whatever followed it).
    ``upgraded`` is an HTTP/1.1 request that asked ``Upgrade: h2c`` (see ``h2c_settings``): it
    gets ``101``, then its answer as stream 1. To stop gracefully from outside (server
    shutdown), make the :class:`HTTP2Connection` yourself and call its ``shutdown``.
    """
    connection = HTTP2Connection(stream, handler, settings, on_response=on_response, upgraded=upgraded)
    await connection.run(received)
