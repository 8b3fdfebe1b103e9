"""The one entry point the HTTP/1.1 channel calls to hand a connection over to HTTP/2."""

from __future__ import annotations

import trio

from .._config import Settings
from ._connection import Handler, HTTP2Connection, ResponseHook

__all__ = ["serve_http2"]


async def serve_http2(
    stream: trio.abc.Stream,
    handler: Handler,
    settings: Settings,
    *,
    on_response: ResponseHook | None = None,
    received: bytes = b"",
    upgrade_settings: bytes | None = None,
) -> None:
    """Serve HTTP/2 on ``stream`` until the connection ends, then close it.

    ``received`` are the bytes already read (the preface, and whatever followed it).
    ``upgrade_settings`` is the ``HTTP2-Settings`` field of an ``Upgrade: h2c`` request, whose
    ``101`` is already sent: that request is then stream 1. To stop gracefully from outside
    (server shutdown), make an :class:`HTTP2Connection` and call its ``shutdown``.
    """
    connection = HTTP2Connection(stream, handler, settings, on_response=on_response, upgrade_settings=upgrade_settings)
    await connection.run(received)
