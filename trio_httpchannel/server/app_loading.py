"""Loading the app the command line names, and telling whether it is ASGI or a native handler."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import pkgutil
import sys
import traceback
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from .._handling import Handler
from ..asgi.app import asgi2_as_3, is_async_callable, positional_parameters
from ..asgi.http import ASGIHandler
from ..asgi.lifespan import Lifespan
from .errors import CommandError

__all__ = ["build_handler", "interface_of", "load_app"]

logger = logging.getLogger("trio_httpchannel")


def load_app(spec: str, *, app_dir: str, factory: bool) -> Callable[..., Any]:
    """The callable ``spec`` (``module:attribute``, dotted attributes allowed) names, imported
    with ``app_dir`` first on the module search path, called first if ``factory``.
    Raises :class:`CommandError` with a one-line reason; the traceback is logged at debug level."""
    module_name, _, path = spec.partition(":")
    if not module_name or not path:
        raise CommandError(f"APP must look like module:attribute, got {spec!r}")
    sys.path.insert(0, os.path.abspath(app_dir))
    _import(module_name)
    try:
        app = pkgutil.resolve_name(spec)
    except ValueError:
        raise CommandError(f"APP must look like module:attribute, got {spec!r}") from None
    except AttributeError:
        raise CommandError(f"module {module_name!r} has no attribute {path!r}") from None
    if factory:
        app = _call_factory(_callable(app, f"the factory {spec}"), spec)
    return _callable(app, "the app")


def _import(module_name: str) -> None:
    """Import the app's module on its own first, so that an error raised while importing it
    (even an AttributeError or a ValueError) is told apart from :func:`pkgutil.resolve_name`'s
    own errors about the attribute path, and reported with the line of the app that raised it."""
    try:
        importlib.import_module(module_name)
    except Exception as error:
        logger.debug("importing %s failed", module_name, exc_info=True)
        raise CommandError(f"cannot import {module_name!r}: {_one_line(error)}") from None


def _call_factory(factory: Callable[[], object], spec: str) -> object:
    try:
        return factory()
    except Exception as error:
        logger.debug("the factory %s failed", spec, exc_info=True)
        raise CommandError(f"the factory {spec} failed: {_one_line(error)}") from None


def _callable(thing: object, what: str) -> Callable[..., Any]:
    if not callable(thing):
        raise CommandError(f"{what} must be callable, got {type(thing).__name__} {thing!r}")
    return thing


def _one_line(error: BaseException) -> str:
    """``error`` and, when it was raised in the app's own code, where."""
    text = f"{type(error).__name__}: {error}"
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if not _is_import_machinery(frame.filename)]
    if frames and not isinstance(error, SyntaxError):
        text += f" ({frames[-1].filename}:{frames[-1].lineno})"
    return text


def _is_import_machinery(filename: str) -> bool:
    return filename.startswith(("<", _IMPORTLIB, _OURS))


_IMPORTLIB = os.path.dirname(importlib.__file__)
_OURS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The trio_httpchannel package: its frames are not the app's."""


def interface_of(app: Callable[..., Any], forced: str = "auto") -> str:
    """``"asgi3"``, ``"asgi2"`` or ``"native"``, told by ``app``'s signature unless ``forced``:
    ASGI 3 takes (scope, receive, send); ASGI 2 is a class, or a plain function, taking only the
    scope; a native handler is an async function taking the request."""
    if forced == "native":
        return "native"
    if inspect.isclass(app):
        return "asgi2"
    positional = positional_parameters(app)
    if positional == 1:
        return "asgi2" if forced == "asgi" or not is_async_callable(app) else "native"
    if positional == 3 or forced == "asgi":
        return "asgi3"
    raise CommandError(
        f"cannot tell whether {app!r} is an ASGI app (scope, receive, send) or a native handler (request) "
        "from its signature: pass --interface asgi or --interface native"
    )


def build_handler(
    app: Callable[..., Any], kind: str, *, root_path: str
) -> tuple[Handler, AbstractAsyncContextManager[object] | None]:
    """The channel handler for ``app`` and, for ASGI, its lifespan; ``kind`` is what
    :func:`interface_of` told from ``app``'s signature, which no static type can say."""
    if kind == "native":
        if root_path:
            logger.warning("--root-path applies to ASGI apps only; the native handler ignores it")
        return app, None
    asgi_app = app if kind == "asgi3" else asgi2_as_3(app)
    lifespan = Lifespan(asgi_app)
    return ASGIHandler(asgi_app, root_path=root_path, state=lifespan.state), lifespan
