"""The seams between HTTP and the WebSocket layer: :func:`serve_upgrade` for HTTP/1.1 and
:func:`serve_extended_connect` for HTTP/2 (RFC 8441).

The HTTP/1.1 channel stops parsing at a request that :func:`is_websocket_upgrade`, writes every
response before it, then calls :func:`serve_upgrade` with its stream and the bytes that arrived
after the upgrade request's head, and closes the stream when it returns. An HTTP/2 connection
calls :func:`serve_extended_connect` in the task of an extended CONNECT's stream, with the
:class:`Opening` that answers on that stream. Everything WebSocket-specific happens here: the
handshake's check and its acceptance or refusal, the handler, the session and its close.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import trio

from .._access import ResponseRecord
from .._config import Settings
from .._request import Request
from .._response import error_response
from ._api import WebSocketHandler, WebSocketRequest
from ._errors import ConnectionClosed, HandshakeError
from ._going_away import OpenWebSockets
from ._handshake import Handshake, parse_extended_connect, parse_handshake
from ._opening import Opening, UpgradeOpening

__all__ = ["serve_extended_connect", "serve_upgrade"]

logger = logging.getLogger("trio_httpchannel.websocket")

ResponseHook = Callable[[ResponseRecord], None]


def serve_upgrade(
    stream: trio.abc.Stream,
    request: Request,
    trailing_data: bytes,
    settings: Settings,
    handler: WebSocketHandler,
    *,
    open_websockets: OpenWebSockets | None = None,
    on_response: ResponseHook | None = None,
) -> Coroutine[Any, Any, None]:
    """Answer the upgrade ``request`` on ``stream`` and serve the WebSocket until it ends: the
    coroutine that does, to await (the one that serves or refuses, returned as it is, so that an
    open WebSocket's task holds no frame of this function's).

    ``trailing_data`` is what the client sent after the request's head (a client may send frames
    before the ``101``): it is the WebSocket's first bytes. A malformed handshake is refused here
    (``400``, or ``426`` for another version) without calling ``handler``; a valid one is given to
    ``handler`` as a :class:`WebSocketRequest`. The coroutine returns when the handler has
    returned and the WebSocket is closed; the caller then closes the stream. Nothing the client or
    the handler does makes it raise: handler errors are logged once and answered (``500`` before accepting, close
    1011 after).

    The WebSocket joins ``open_websockets`` (the channel's, whose shutdown closes it with 1001).
    ``on_response`` gets one :class:`ResponseRecord` (see ``WebSocketRequest._record``): a refusal's
    once it is written, a ``101``'s when the WebSocket has ended.
    """
    opening = UpgradeOpening(stream, trailing_data, settings)
    try:
        handshake = parse_handshake(request.method, request.http_version, request.headers)
    except HandshakeError as error:
        return _refuse(opening, request, error, on_response)
    return _serve(opening, request, handshake, settings, handler, open_websockets, on_response)


def serve_extended_connect(
    opening: Opening,
    request: Request,
    settings: Settings,
    handler: WebSocketHandler,
    *,
    open_websockets: OpenWebSockets | None = None,
    on_response: ResponseHook | None = None,
) -> Coroutine[Any, Any, None]:
    """Answer an HTTP/2 extended CONNECT with ``:protocol: websocket`` (``request``, its
    pseudo-headers already checked) through ``opening``, and serve the WebSocket until it ends,
    as :func:`serve_upgrade` does: a bad handshake refused without calling ``handler``
    (``400``, ``426`` for another version), the handler's errors answered, one record."""
    try:
        handshake = parse_extended_connect(request.headers)
    except HandshakeError as error:
        return _refuse(opening, request, error, on_response)
    return _serve(opening, request, handshake, settings, handler, open_websockets, on_response)


async def _refuse(opening: Opening, request: Request, error: HandshakeError, on_response: ResponseHook | None) -> None:
    """Answer a handshake we cannot accept with ``error``'s status, without the handler."""
    started = trio.current_time()
    logger.debug("refusing a WebSocket handshake from %s: %s %s", request.client, error.status, error.message)
    response = error_response(error.status, error.message)
    response.headers.extend(error.headers)
    written = await opening.reject(response)
    if on_response is not None:
        seconds = trio.current_time() - started
        record = ResponseRecord(request.client, request, error.status, written or 0, seconds, written is not None)
        _report(on_response, record)
    if written is not None:
        await opening.after_refusal()


async def _serve(
    opening: Opening,
    request: Request,
    handshake: Handshake,
    settings: Settings,
    handler: WebSocketHandler,
    open_websockets: OpenWebSockets | None,
    on_response: ResponseHook | None,
) -> None:
    """Give a valid handshake to ``handler``, then serve the WebSocket it accepted. The
    handler's errors are answered (see :meth:`WebSocketRequest._finish`); its WebSocket closing
    under it is an ordinary end."""
    started = trio.current_time()
    client = request.client
    websocket_request: WebSocketRequest | None = None
    try:
        async with trio.open_nursery() as nursery:
            websocket_request = WebSocketRequest(request, handshake, opening, settings, nursery, open_websockets)
            failed = False
            try:  # here, not in a function of its own: an idle WebSocket's task holds this frame
                await handler(websocket_request)
            except ConnectionClosed as closed:
                logger.debug("the WebSocket handler for %r ended with its connection: %s", websocket_request, closed)
            except Exception:
                logger.exception("the WebSocket handler failed on %r from %s", websocket_request, client)
                failed = True
            await websocket_request._finish(failed)
    finally:
        if on_response is not None and websocket_request is not None:
            record = websocket_request._record(client, started)
            if record is not None:
                _report(on_response, record)
    assert websocket_request is not None
    if websocket_request._rejected:
        await opening.after_refusal()


def _report(on_response: ResponseHook, record: ResponseRecord) -> None:
    """Call the access-log hook; its failure is logged, not the connection's."""
    try:
        on_response(record)
    except Exception:
        logger.exception("the on_response hook failed on %r", record)
