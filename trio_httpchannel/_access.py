"""What the channel tells its ``on_response`` hook (an access log) about each response."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from ._request import Address, Request

__all__ = ["ResponseRecord", "ResponseHook", "report"]

logger = logging.getLogger("trio_httpchannel")


@dataclasses.dataclass(frozen=True)
class ResponseRecord:
    """One response that started to go out: exactly one record each, also for a refused
    request and for a response cut short.

    ``client`` is the client's socket address (``None`` without a socket). ``request`` is the
    request, or ``None`` when it was refused before its head could be parsed (a malformed or
    oversized head, a head that never came whole). ``sent`` counts the bytes of this response
    (head included; over HTTP/2 its HEADERS and DATA frames) handed to the socket; ``seconds`` runs from the parsed head to the last of
    them. ``complete`` is false when the response was cut short: the connection was aborted
    (the client went away, did not read within ``send_timeout``, or a streamed body failed)
    before all of it was written.

    A WebSocket upgrade request gets one record too: its refusal (``400``, ``426``, or the
    handler's response) once it is written, or, for an accepted WebSocket, status ``101`` once
    the WebSocket has ended, with ``sent`` counting every byte of the connection after the
    request (the ``101`` head and every frame), ``seconds`` the WebSocket's whole life, and
    ``complete`` false when the connection was lost or aborted before our close frame went out.
    """

    client: Address
    request: Request | None
    status: int
    sent: int
    seconds: float
    complete: bool


ResponseHook = Callable[[ResponseRecord], None]
"""What ``HTTPChannel(on_response=...)`` calls with each record."""


def report(hook: ResponseHook, record: ResponseRecord) -> None:
    """Call ``hook`` with ``record``; an exception it raises is logged, not raised."""
    try:
        hook(record)
    except Exception:
        logger.exception("the on_response hook failed on %r", record)
