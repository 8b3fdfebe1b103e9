"""The exchanges of one HTTP/1.1 connection as its reader makes and fails them: an exchange
built from a parsed head, with its ``Request`` (and the zero-capacity memory channel its body
is fed through), and what a body that breaks the rules does to the exchange's response.

Both act on the connection's state, none of the reader's: the reader (``reader.py``) decides
when, this module what.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from .._errors import ProtocolError
from .._exchange import Exchange
from .._headers import Headers
from .._request import Request, RequestBody
from .._response import WHOLE, close_body, error_response
from .._state import AWAITED, GIVEN, SENDING, Dispatch
from .head import RequestHead

if TYPE_CHECKING:
    from .connection import HTTP1Connection

__all__ = ["fail_body", "new_exchange"]

logger = logging.getLogger("trio_httpchannel")


def new_exchange(
    connection: HTTP1Connection, head: RequestHead | None, dispatch: Dispatch, *, refused: bool = False
) -> Exchange[RequestHead]:
    """The exchange of ``head``, with its request (none when the head could not be parsed;
    one without a body when the request is refused)."""
    exchange = Exchange(connection, head, trio.current_time() if connection.hook is not None else 0.0, dispatch)
    if head is None:
        return exchange
    body: RequestBody
    if head.has_body and not refused:
        send, receive = trio.open_memory_channel[bytes](0)
        exchange.body_send = send
        body = RequestBody(receive, exchange.want_continue)
    else:
        body = RequestBody(None)
    exchange.request = Request(
        head.method,
        head.target,
        head.http_version,
        Headers(head.headers),
        body,
        scheme=connection.scheme,
        client=connection.client,
        server=connection.server,
        tls=connection.tls,
        nursery=connection.nursery,
    )
    exchange.request._exchange = exchange
    return exchange


def fail_body(connection: HTTP1Connection, exchange: Exchange[RequestHead], error: ProtocolError) -> None:
    """The body failed: until its head goes out, the response is the body's error, whatever
    the handler answers; a streamed response already under way is cut (abort)."""
    logger.debug("bad request body from %s: %s", connection.peer(), error.message)
    exchange.fail_body(error)
    assert exchange.request is not None
    exchange.request.body._fail(error)
    body = exchange.response.body if exchange.response is not None else b""
    if exchange.progress is AWAITED or exchange.progress is GIVEN:
        exchange.set_response(error_response(error.status, error.message))
        if not isinstance(body, WHOLE):
            assert connection.nursery is not None
            connection.nursery.start_soon(close_body, body)
    elif exchange.progress is SENDING and not isinstance(body, WHOLE):
        connection.abort("the request body failed while its streamed response was being sent")
