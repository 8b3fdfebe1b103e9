"""Retiring a worker after a number of requests (``--limit-max-requests``), as Gunicorn's
``max_requests`` does: a bound on what a slow leak in the application can cost.

:class:`RequestLimit` wraps a handler and counts the requests it is called for; when the count
reaches the limit, it calls the server's ``shutdown``: a graceful one
(the request that reached it and those in flight are answered with ``Connection: close``, the
listener stops at once). Under a supervisor the worker is then replaced; the listening socket
stays open in the supervisor meanwhile, so connections wait in its backlog instead of failing.
:func:`jittered` spreads the limits of several workers so that they do not retire together.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from .._handling import Handler
from .._request import Request
from .._response import Response

__all__ = ["RequestLimit", "jittered"]

logger = logging.getLogger("trio_httpchannel")


def jittered(limit: int, jitter: int, rng: random.Random | None = None) -> int:
    """``limit`` plus a random number from 0 to ``jitter``, both included."""
    if limit < 1 or jitter < 0:
        raise ValueError(f"a request limit needs limit >= 1 and jitter >= 0, got {limit!r} and {jitter!r}")
    return limit + (rng or random.Random()).randint(0, jitter)


class RequestLimit:
    """A handler that calls ``handler`` and counts the calls; when the ``limit``-th request
    arrives it calls ``retire`` (set it to the server's ``shutdown``) before handling it, so
    that this request's response already says ``Connection: close``. Requests taken after that
    (already on their way while the server stops) are still handled."""

    def __init__(self, handler: Handler, limit: int, retire: Callable[[], None] | None = None) -> None:
        if limit < 1:
            raise ValueError(f"the request limit must be at least 1, got {limit!r}")
        self.handler = handler
        self.limit = limit
        self.retire = retire
        self.count = 0

    async def __call__(self, request: Request) -> Response:
        self.count += 1
        if self.count == self.limit:
            logger.info("retiring after %d requests (--limit-max-requests)", self.limit)
            if self.retire is not None:
                self.retire()
        return await self.handler(request)
