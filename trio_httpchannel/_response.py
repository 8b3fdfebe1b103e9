"""A response as the handler gives it, the same for every protocol: its status, header fields
and body, checked when it is made; and the short answer the channel gives a refused request.
How it goes on the wire is the protocol's (``http1/serializer.py`` for HTTP/1.1)."""

from __future__ import annotations

import http
import re
import time
from collections.abc import AsyncIterable, Iterable, Mapping
from email.utils import formatdate
from typing import Union

from ._file import FileBody

__all__ = [
    "Response",
    "HeaderPairs",
    "Body",
    "FIELD_NAME",
    "FIELD_VALUE",
    "WHOLE",
    "check_body_chunk",
    "close_body",
    "error_response",
    "header_pairs",
    "http_date",
    "http_date_line",
    "takes_trailers",
    "trailer_fields",
]

HeaderPairs = Union[
    Mapping[str | bytes, str | bytes],
    Iterable[tuple[str | bytes, str | bytes] | list[str | bytes]],
]
"""Header fields as a mapping, or ``(name, value)`` pairs, of ``str`` (Latin-1) or ``bytes``."""
Body = Union[bytes, AsyncIterable[bytes]]
WHOLE = (bytes, bytearray, memoryview)
"""The types of a body given whole; any other is an async iterable, streamed."""


class Response:
    """What a handler returns: a status, header fields and a body.

    ``headers`` is a mapping (``{"content-type": "text/plain"}``) or an iterable of ``(name,
    value)`` pairs (repeat a name this way), each ``str`` (Latin-1) or ``bytes``; anything else
    raises ``TypeError`` here, not when the response is sent. They are kept as a list of pairs.
    ``body`` is ``bytes`` or an async iterable of ``bytes``, which the channel iterates only as
    fast as the client reads (a slow client slows the producer). The channel picks the framing
    (Content-Length when the length is known, chunked for HTTP/1.1 streams, close-delimited for
    HTTP/1.0) and owns the ``Connection`` and ``Transfer-Encoding`` fields; a handler that sets
    ``Connection: close`` closes the connection after this response. ``Content-Length`` given
    with a streamed body is honoured, and the stream must then produce exactly that many bytes.
    A :class:`FileBody` sends a file, with its size as the Content-Length.

    ``trailers``, when not ``None``, are header fields sent after the body: at the end of a
    chunked body over HTTP/1.1 to a client that said it takes them (``TE: trailers``), as a last
    HEADERS frame over HTTP/2 to one that did; to any other client they are dropped and the body
    sent as without them. They are checked as headers are (a token name, a value without CR, LF
    or NUL) and may not be framing or routing fields (``Content-Length``, ``Host``, ...):
    ``ValueError`` here. Giving them makes an HTTP/1.1 response to such a client chunked even
    when its length is known. The attribute is read once the body has ended, so the producer of
    a streamed body may fill it in (``response.trailers = [...]``) until its last chunk; a value
    set so that fails the checks aborts the connection (the body was sent without its end).
    """

    __slots__ = ("status", "headers", "body", "trailers")

    def __init__(
        self, status: int, headers: HeaderPairs = (), body: Body = b"", *, trailers: HeaderPairs | None = None
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(f"a final response status is an integer from 200 to 599, got {status!r}")
        if isinstance(body, str):
            raise TypeError("a response body is bytes or an async iterable of bytes; encode the str first")
        self.status = status
        self.headers = header_pairs(headers)
        self.body = body
        self.trailers: HeaderPairs | None = None if trailers is None else trailer_fields(trailers)
        if trailers is not None and isinstance(body, FileBody):
            raise ValueError("a FileBody is sent with its Content-Length, which leaves no room for trailers")

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


_STRINGS = (str, bytes)
_HEADERS_EXPECTED = "response headers are a mapping or an iterable of (name, value) pairs of str or bytes"


def header_pairs(headers: object) -> list[tuple[str | bytes, str | bytes]]:
    """``headers`` as a list of pairs, or a ``TypeError`` saying what was expected instead.
    A list, the common case, skips the slower abstract-class checks (~0.3 µs)."""
    if type(headers) is list:
        pairs = list(headers)
    elif isinstance(headers, Mapping):
        pairs = list(headers.items())
    elif isinstance(headers, Iterable) and not isinstance(headers, _STRINGS):
        pairs = list(headers)
    else:
        raise TypeError(f"{_HEADERS_EXPECTED}, got {type(headers).__name__} {_short(headers)}")
    for pair in pairs:
        if not (
            isinstance(pair, (tuple, list))
            and len(pair) == 2
            and isinstance(pair[0], _STRINGS)
            and isinstance(pair[1], _STRINGS)
        ):
            raise TypeError(f"{_HEADERS_EXPECTED}, got {_short(pair)} among them")
    return pairs


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


FIELD_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
"""A field name: a token (RFC 9110 section 5.1)."""
FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
"""A field value, stripped: no NUL, CR, LF or other whitespace but space and tab inside."""

_NOT_TRAILERS = frozenset(
    {
        b"connection",
        b"content-encoding",
        b"content-length",
        b"content-range",
        b"content-type",
        b"host",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
"""Fields that only a head may carry: framing, routing and connection control, and what says how
to read the body (RFC 9110 section 6.5.1)."""


def trailer_fields(trailers: object) -> list[tuple[bytes, bytes]]:
    """``trailers`` (header pairs) as ``(lower-cased name, value)`` byte pairs, checked as
    response headers are; a ``ValueError`` names the first that cannot be a trailer."""
    fields = []
    for name, value in header_pairs(trailers):
        raw_name = name.encode("latin-1") if isinstance(name, str) else bytes(name)
        raw_value = (value.encode("latin-1") if isinstance(value, str) else bytes(value)).strip(b" \t")
        if not FIELD_NAME.fullmatch(raw_name):
            raise ValueError(f"illegal trailer name {raw_name!r}")
        if not FIELD_VALUE.fullmatch(raw_value):
            raise ValueError(f"illegal value for trailer {raw_name!r}: {raw_value!r}")
        lowered = raw_name.lower()
        if lowered in _NOT_TRAILERS:
            raise ValueError(f"{raw_name.decode()} cannot be sent as a trailer, only in the head")
        fields.append((lowered, raw_value))
    return fields


def takes_trailers(request_headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request's ``TE`` field (lower-cased name and value pairs) says its client takes
    trailers (RFC 9110 section 10.1.4)."""
    for name, value in request_headers:
        if name == b"te" and any(part.split(b";")[0].strip().lower() == b"trailers" for part in value.split(b",")):
            return True
    return False


def check_body_chunk(data: object) -> None:
    """Raise ``TypeError`` naming the mistake when a streamed body yields something other than
    bytes (``bytearray`` and ``memoryview`` are bytes too): a ``str`` most often, whose error
    from deep in the writer would not say which body or why."""
    if not isinstance(data, WHOLE):
        hint = ": encode it first" if isinstance(data, str) else ""
        raise TypeError(
            f"the response body yielded {type(data).__name__} {_short(data)}; an async body must yield bytes{hint}"
        )


async def close_body(body: AsyncIterable[bytes]) -> None:
    """Close a streamed body that will not be sent (its ``aclose``, when it has one), so that
    its producer stops."""
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()


def error_response(status: int, message: str, headers: HeaderPairs = ()) -> Response:
    """The short plain-text answer to a request the channel refuses, closing the connection,
    with ``headers`` (``Retry-After``, say) after its own."""
    return Response(
        status,
        [("content-type", "text/plain; charset=utf-8"), ("connection", "close"), *header_pairs(headers)],
        f"{status} {http.HTTPStatus(status).phrase}: {message}\n".encode(),
    )


_date_cache: tuple[int, bytes, bytes] = (0, b"", b"")


def http_date() -> bytes:
    """The current time as an IMF-fixdate, computed at most once a second."""
    if _date_cache[0] != int(time.time()):
        _new_date()
    return _date_cache[1]


def http_date_line() -> bytes:
    """The ``Date`` field of an HTTP/1.1 head, ``Date: <http_date()>\r\n``, made with the date
    itself (the formatting would cost every response ~1k instructions)."""
    if _date_cache[0] != int(time.time()):
        _new_date()
    return _date_cache[2]


def _new_date() -> None:
    global _date_cache
    now = int(time.time())
    date = formatdate(now, usegmt=True).encode("ascii")
    _date_cache = (now, date, b"Date: %s\r\n" % date)
