"""What an ASGI application is, as this package takes one: the types of its callable and its
messages, and the ASGI 2 shape (a callable taken with the scope alone) told apart from ASGI 3 and
wrapped, once, when a handler is made, never per request.

The HTTP adapter (``http.py``), the lifespan (``lifespan.py``) and the command line's app
loading (``server/app_loading.py``) all take apps through here.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "as_asgi3",
    "asgi2_as_3",
    "is_async_callable",
    "positional_parameters",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def as_asgi3(app: Any) -> ASGIApp:
    """``app`` as an ASGI 3 callable. An ASGI 2 app (a class, or a plain function, called with
    the scope alone and returning the callable that takes receive and send) is wrapped."""
    if not callable(app):
        raise TypeError(f"an ASGI app must be callable, got {app!r}")
    is_asgi2 = inspect.isclass(app) or (not is_async_callable(app) and positional_parameters(app) == 1)
    return asgi2_as_3(app) if is_asgi2 else app


def asgi2_as_3(app: Callable[[Scope], Any]) -> ASGIApp:
    """The ASGI 3 callable that runs the ASGI 2 app ``app``."""

    async def asgi3(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope)(receive, send)

    return asgi3


def positional_parameters(app: Callable[..., Any]) -> int | None:
    """How many positional parameters ``app`` takes, ``None`` when its signature is unknown."""
    try:
        parameters = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for parameter in parameters if parameter.kind in kinds)


def is_async_callable(app: object) -> bool:
    """Whether calling ``app`` (a function, or an object with an async ``__call__``) gives a
    coroutine."""
    return inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(getattr(app, "__call__", None))  # noqa: B004 (its __call__, not whether it is callable)
