"""The ASGI extensions of the http scope that the adapter serves, and where: what goes into
``scope["extensions"]``, and the checks of their messages that need no state."""

from __future__ import annotations

from typing import Any, Final

from .._response import FIELD_VALUE

__all__ = ["EXTENSIONS", "EXTENSIONS_HTTP1_0", "link_value"]

EXTENSIONS: Final[dict[str, dict[str, Any]]] = {
    "http.response.pathsend": {},
    "http.response.trailers": {},
    "http.response.early_hint": {},
}
"""The response extensions of the ASGI spec this adapter serves over HTTP/1.1 and HTTP/2: a file
sent by path (``os.sendfile`` on a plain socket), trailers (sent to a client that said ``TE:
trailers``, dropped for any other), ``103 Early Hints``. Each request gets its own copy, so that
an app adding to its scope's extensions changes no other's. Like an app, a middleware must not
send a message whose extension its scope does not name."""
EXTENSIONS_HTTP1_0: Final[dict[str, dict[str, Any]]] = {"http.response.pathsend": {}}
"""An HTTP/1.0 client reads neither chunked trailers nor a 1xx response."""


def link_value(link: object) -> bytes:
    """One link of an early hint as a ``Link`` field value, or a ``ValueError``."""
    if not isinstance(link, (bytes, str)):
        raise TypeError(f"an early hint's links are bytes, got {link!r}")
    value = (link.encode("latin-1") if isinstance(link, str) else link).strip(b" \t")
    if not value or not FIELD_VALUE.fullmatch(value):
        raise ValueError(f"illegal Link value in an early hint: {value!r}")
    return value
