"""What a handler is, and what its outcome is answered with, whatever the protocol."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ._addresses import peer_name
from ._errors import ClientDisconnected, ProtocolError
from ._exchange import Carrier, Exchange
from ._request import Request
from ._response import Response, error_response
from ._state import FAILED

__all__ = ["Handler", "call_handler"]

Handler = Callable[[Request], Awaitable[Response]]
"""An async callable taking a :class:`Request` and returning its :class:`Response`."""

logger = logging.getLogger("trio_httpchannel")


async def call_handler(handler: Handler, exchange: Exchange[Any], carrier: Carrier) -> Response:
    """The response to ``exchange``'s request: what ``handler`` returns, or the answer to how it
    failed. A :class:`ProtocolError` is answered with its status. :class:`ClientDisconnected`
    (the handler found its client gone) aborts the connection quietly, unless the body failed,
    whose error is then the answer. Anything else is a 500, logged once with its traceback."""
    request = exchange.request
    assert request is not None
    try:
        response = await handler(request)
        if not isinstance(response, Response):
            raise TypeError(f"the handler returned {response!r}, not a Response")
    except ProtocolError as error:
        return error_response(error.status, error.message)
    except ClientDisconnected as error:
        if exchange.body is not FAILED:
            carrier.abort(f"the handler stopped, the client being gone: {error}")
        return error_response(400, "the request could not be completed")
    except Exception:
        logger.exception("the handler failed on %r from %s", request, peer_name(request.client))
        return error_response(500, "the server failed to produce a response")
    return response
