"""A response as the handler gives it, and the rules that put it on the wire (sans-io).

The head is serialized here rather than by ``h11.Connection.send``: that costs about 30 µs a
response, this about 1 µs. The checks stay as strict as h11's (token header names; values
without NUL, CR, LF or other whitespace but space and tab inside), because they are what stops
response splitting.
"""

from __future__ import annotations

import enum
import http
import re
import time
from collections.abc import AsyncIterable, Iterable, Mapping
from email.utils import formatdate
from typing import Union

__all__ = [
    "Response",
    "Framing",
    "ResponseHead",
    "serialize_head",
    "check_body_chunk",
    "serialize_informational",
    "chunk",
    "LAST_CHUNK",
    "error_response",
]

HeaderPairs = Union[
    Mapping[Union[str, bytes], Union[str, bytes]],
    Iterable[Union[tuple[Union[str, bytes], Union[str, bytes]], list[Union[str, bytes]]]],
]
"""Header fields as a mapping, or ``(name, value)`` pairs, of ``str`` (Latin-1) or ``bytes``."""
Body = Union[bytes, AsyncIterable[bytes]]

_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
_OWNED = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length"})
_SERVER_LINE = b"Server: trio-httpchannel\r\n"
LAST_CHUNK = b"0\r\n\r\n"


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
    """

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: HeaderPairs = (), body: Body = b"") -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(f"a final response status is an integer from 200 to 599, got {status!r}")
        if isinstance(body, str):
            raise TypeError("a response body is bytes or an async iterable of bytes; encode the str first")
        self.status = status
        self.headers = _header_pairs(headers)
        self.body = body

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


_STRINGS = (str, bytes)
_HEADERS_EXPECTED = "response headers are a mapping or an iterable of (name, value) pairs of str or bytes"


def _header_pairs(headers: object) -> list[tuple[str | bytes, str | bytes]]:
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


class Framing(enum.Enum):
    """How the end of a response body is known to the client."""

    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"
    CLOSE = "close"


class ResponseHead:
    """A serialized response head and the decisions taken with it."""

    __slots__ = ("data", "framing", "length", "keep_alive")

    def __init__(self, data: bytes, framing: Framing, length: int | None, keep_alive: bool) -> None:
        self.data = data
        self.framing = framing
        self.length = length
        self.keep_alive = keep_alive


def serialize_head(
    response: Response,
    *,
    method: str,
    http_version: str,
    keep_alive: bool,
) -> ResponseHead:
    """The bytes of ``response``'s status line and headers for a request of ``method`` over
    ``http_version``, with its framing and whether the connection may persist after it.

    ``keep_alive`` is what the request allows; the response can only lower it (``Connection:
    close`` from the handler, or a stream that HTTP/1.0 can only end by closing).
    Raises ``ValueError`` for a header that could split the response.
    """
    lines = [_status_line(response.status)]
    content_length: int | None = None
    has_date = has_server = False
    for name, value in response.headers:
        lowered, line = _field(name, value)
        if lowered in _OWNED:
            if lowered == b"connection" and b"close" in line.lower():
                keep_alive = False
            elif lowered == b"content-length":
                content_length = _parse_length(line, content_length)
            continue
        has_date = has_date or lowered == b"date"
        has_server = has_server or lowered == b"server"
        lines.append(line)
    framing, length, keep_alive = _framing(response, method, http_version, keep_alive, content_length)
    if length is not None:
        lines.append(b"Content-Length: %d\r\n" % length)
    if framing is Framing.CHUNKED:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    if not has_date:
        lines.append(b"Date: %s\r\n" % http_date())
    if not has_server:
        lines.append(_SERVER_LINE)
    if not keep_alive:
        lines.append(b"Connection: close\r\n\r\n")
    elif http_version == "1.0":
        lines.append(b"Connection: keep-alive\r\n\r\n")
    else:
        lines.append(b"\r\n")
    return ResponseHead(b"".join(lines), framing, length, keep_alive)


def serialize_informational(status: int, headers: HeaderPairs) -> bytes:
    """The head of an informational (1xx) response such as ``101 Switching Protocols``, with the
    same header checks as a final response's. It has no body, so no framing fields are added.
    Raises ``ValueError`` for a status that is not 1xx or a header that could split the response."""
    if not 100 <= status <= 199:
        raise ValueError(f"an informational status is from 100 to 199, got {status!r}")
    return b"".join([_status_line(status), *(_field(name, value)[1] for name, value in headers), b"\r\n"])


def _field(name: str | bytes, value: str | bytes) -> tuple[bytes, bytes]:
    """The lower-cased name and the serialized ``name: value`` line of one header, validated.

    Handlers send the same few headers again and again, so validated lines are remembered
    (at most ``_FIELD_CACHE_SIZE`` of them); a header seen before costs one dict lookup.
    """
    key = (name, value)
    cached = _field_cache.get(key)
    if cached is not None:
        return cached
    raw_name, raw_value = _to_bytes(name), _to_bytes(value).strip(b" \t")
    if not _TOKEN.fullmatch(raw_name):
        raise ValueError(f"illegal response header name {raw_name!r}")
    if not _FIELD_VALUE.fullmatch(raw_value):
        raise ValueError(f"illegal value for response header {raw_name!r}: {raw_value!r}")
    if len(_field_cache) >= _FIELD_CACHE_SIZE:
        _field_cache.clear()
    cached = _field_cache[key] = (raw_name.lower(), b"%s: %s\r\n" % (raw_name, raw_value))
    return cached


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d Unknown\r\n" % status
    return line


def _framing(
    response: Response, method: str, http_version: str, keep_alive: bool, content_length: int | None
) -> tuple[Framing, int | None, bool]:
    if response.status in (204, 304):
        return Framing.NONE, content_length if response.status == 304 else None, keep_alive
    body = response.body
    if isinstance(body, (bytes, bytearray, memoryview)):
        if content_length is not None and content_length != len(body) and method != "HEAD":
            raise ValueError(
                f"Content-Length {content_length} does not match the {len(body)}-byte response body"
            )
        content_length = len(body) if content_length is None else content_length
    if method == "HEAD":
        return Framing.NONE, content_length, keep_alive
    if content_length is not None:
        return Framing.LENGTH, content_length, keep_alive
    if http_version == "1.1":
        return Framing.CHUNKED, None, keep_alive
    return Framing.CLOSE, None, False


def _parse_length(line: bytes, previous: int | None) -> int:
    value = line[line.index(b":") + 2 : -2]
    if not value.isdigit() or len(value) > 18:
        raise ValueError(f"illegal Content-Length response header {value!r}")
    length = int(value)
    if previous is not None and previous != length:
        raise ValueError(f"conflicting Content-Length response headers {previous} and {length}")
    return length


def check_body_chunk(data: object) -> None:
    """Raise ``TypeError`` naming the mistake when a streamed body yields something other than
    bytes (``bytearray`` and ``memoryview`` are bytes too): a ``str`` most often, whose error
    from deep in the writer would not say which body or why."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        hint = ": encode it first" if isinstance(data, str) else ""
        raise TypeError(
            f"the response body yielded {type(data).__name__} {_short(data)}; an async body must yield bytes{hint}"
        )


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked body (``data`` must not be empty: that ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def error_response(status: int, message: str) -> Response:
    """The short plain-text answer to a request the channel refuses, closing the connection."""
    return Response(
        status,
        [("content-type", "text/plain; charset=utf-8"), ("connection", "close")],
        f"{status} {http.HTTPStatus(status).phrase}: {message}\n".encode(),
    )


_STATUS_LINES = {int(s): b"HTTP/1.1 %d %s\r\n" % (s, s.phrase.encode("ascii")) for s in http.HTTPStatus}
_FIELD_CACHE_SIZE = 512
_field_cache: dict[tuple[str | bytes, str | bytes], tuple[bytes, bytes]] = {}
_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The current time as an IMF-fixdate, computed at most once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


def _to_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    return value.encode("latin-1")
