"""The seam between an HTTP/1.1 connection and the WebSocket layer: :func:`serve_upgrade`.

The HTTP/1.1 channel stops parsing at a request that :func:`is_websocket_upgrade`, writes every
response before it, then calls :func:`serve_upgrade` with its stream and the bytes that arrived
after the upgrade request's head, and closes the stream when it returns. Everything
WebSocket-specific happens here: the handshake's check and its ``101`` or refusal, the handler,
the session and its close.
"""

from __future__ import annotations

import logging

import trio

from .._config import Settings
from .._request import Request
from .._response import error_response
from ._api import WebSocketHandler, WebSocketRequest
from ._errors import ConnectionClosed, HandshakeError
from ._going_away import OpenWebSockets
from ._handshake import parse_handshake
from ._http import linger, refusal_bytes, send_head

__all__ = ["serve_upgrade"]

logger = logging.getLogger("trio_httpchannel.websocket")


async def serve_upgrade(
    stream: trio.abc.Stream,
    request: Request,
    trailing_data: bytes,
    settings: Settings,
    handler: WebSocketHandler,
    *,
    open_websockets: OpenWebSockets | None = None,
) -> None:
    """Answer the upgrade ``request`` on ``stream`` and serve the WebSocket until it ends.

    ``trailing_data`` is what the client sent after the request's head (a client may send frames
    before the ``101``): it is the WebSocket's first bytes. A malformed handshake is refused here
    (``400``, or ``426`` for another version) without calling ``handler``; a valid one is given to
    ``handler`` as a :class:`WebSocketRequest`. Returns when the handler has returned and the
    WebSocket is closed; the caller then closes the stream. Nothing the client or the handler does
    makes it raise: handler errors are logged once and answered (``500`` before accepting, close
    1011 after). The WebSocket joins ``open_websockets`` (the channel's, whose shutdown closes
    it with 1001).
    """
    try:
        handshake = parse_handshake(request.method, request.http_version, request.headers)
    except HandshakeError as error:
        logger.debug("refusing a WebSocket handshake from %s: %s %s", request.client, error.status, error.message)
        response = error_response(error.status, error.message)
        response.headers.extend(error.headers)
        if await send_head(stream, refusal_bytes(response), settings):
            await linger(stream, settings)
        return
    async with trio.open_nursery() as nursery:
        websocket_request = WebSocketRequest(
            request, handshake, stream, trailing_data, settings, nursery, open_websockets
        )
        failed = await _call_handler(handler, websocket_request)
        await websocket_request._finish(failed)


async def _call_handler(handler: WebSocketHandler, request: WebSocketRequest) -> bool:
    """Run ``handler``; whether it failed. Its WebSocket closing under it is an ordinary end."""
    try:
        await handler(request)
    except ConnectionClosed as closed:
        logger.debug("the WebSocket handler for %r ended with its connection: %s", request, closed)
    except Exception:
        logger.exception("the WebSocket handler failed on %r from %s", request, request.client)
        return True
    return False
