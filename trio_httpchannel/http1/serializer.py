"""HTTP/1.1 responses on the wire (sans-io): the head serialized, the framing chosen, the chunks.

The head is serialized here rather than by ``h11.Connection.send``: that costs about 30 µs a
response, this about 1 µs. The checks stay as strict as h11's (token header names; values
without NUL, CR, LF or other whitespace but space and tab inside), because they are what stops
response splitting.
"""

from __future__ import annotations

import enum
import http
from typing import Final

from .._file import FileBody
from .._response import FIELD_NAME, FIELD_VALUE, WHOLE, HeaderPairs, Response, header_pairs, http_date_line

__all__ = [
    "Framing",
    "NONE",
    "LENGTH",
    "CHUNKED",
    "CLOSE",
    "ResponseHead",
    "serialize_head",
    "serialize_informational",
    "chunk",
    "last_chunk",
    "LAST_CHUNK",
]

_OWNED = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length"})
_SERVER_LINE = b"Server: trio-httpchannel\r\n"
LAST_CHUNK = b"0\r\n\r\n"


class Framing(enum.Enum):
    """How the end of a response body is known to the client."""

    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"
    CLOSE = "close"


NONE: Final = Framing.NONE
LENGTH: Final = Framing.LENGTH
CHUNKED: Final = Framing.CHUNKED
CLOSE: Final = Framing.CLOSE
"""The members as module names, for the identity checks of every response (see ``_state.py``)."""


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
    takes_trailers: bool = False,
) -> ResponseHead:
    """The bytes of ``response``'s status line and headers for a request of ``method`` over
    ``http_version``, with its framing and whether the connection may persist after it.

    ``keep_alive`` is what the request allows; the response can only lower it (``Connection:
    close`` from the handler, or a stream that HTTP/1.0 can only end by closing).
    ``takes_trailers`` is whether the request said it takes trailers (``TE: trailers``): a
    response with trailers to it is then chunked, whatever its length, to carry them.
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
                length = _lengths.get(line)
                if length is None:
                    length = _parse_length(line)
                if content_length is not None and content_length != length:
                    raise ValueError(f"conflicting Content-Length response headers {content_length} and {length}")
                content_length = length
            continue
        has_date = has_date or lowered == b"date"
        has_server = has_server or lowered == b"server"
        lines.append(line)
    framing, length, keep_alive = _framing(response, method, http_version, keep_alive, content_length)
    if (
        framing is LENGTH
        and takes_trailers
        and http_version == "1.1"
        and response.trailers is not None
        and not isinstance(response.body, FileBody)
    ):
        framing, length = CHUNKED, None
    if length is not None:
        lines.append(_length_lines.get(length) or _length_line(length))
    if framing is CHUNKED:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    if not has_date:
        lines.append(http_date_line())
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
    return b"".join([_status_line(status), *(_field(name, value)[1] for name, value in header_pairs(headers)), b"\r\n"])


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
    if not FIELD_NAME.fullmatch(raw_name):
        raise ValueError(f"illegal response header name {raw_name!r}")
    if not FIELD_VALUE.fullmatch(raw_value):
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
        return NONE, content_length if response.status == 304 else None, keep_alive
    body = response.body
    size = len(body) if isinstance(body, WHOLE) else body.size if isinstance(body, FileBody) else None
    if size is not None:
        if content_length is not None and content_length != size and method != "HEAD":
            raise ValueError(f"Content-Length {content_length} does not match the {size}-byte response body")
        content_length = size if content_length is None else content_length
    if method == "HEAD":
        return NONE, content_length, keep_alive
    if content_length is not None:
        return LENGTH, content_length, keep_alive
    if http_version == "1.1":
        return CHUNKED, None, keep_alive
    return CLOSE, None, False


def _parse_length(line: bytes) -> int:
    """The length a ``Content-Length`` line (from ``_field``) says, remembered by the line in
    ``_lengths`` as ``_field`` remembers lines: the parse (``int`` of bytes above all) costs
    about 4k instructions, a response whose handler sends the field every time pays it once."""
    value = line[line.index(b":") + 2 : -2]
    if not value.isdigit() or len(value) > 18:
        raise ValueError(f"illegal Content-Length response header {value!r}")
    if len(_lengths) >= _FIELD_CACHE_SIZE:
        _lengths.clear()
    length = _lengths[line] = int(value)
    return length


def _length_line(length: int) -> bytes:
    """The ``Content-Length`` line of a head, remembered in ``_length_lines`` (at most
    ``_FIELD_CACHE_SIZE`` of them): a server sends the same few lengths again and again, and a
    lookup costs less than the formatting."""
    if len(_length_lines) >= _FIELD_CACHE_SIZE:
        _length_lines.clear()
    line = _length_lines[length] = b"Content-Length: %d\r\n" % length
    return line


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked body (``data`` must not be empty: that ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def last_chunk(trailers: list[tuple[bytes, bytes]]) -> bytes:
    """The end of a chunked body carrying ``trailers``, fields checked by ``trailer_fields``."""
    return b"0\r\n" + b"".join(b"%s: %s\r\n" % field for field in trailers) + b"\r\n"


_STATUS_LINES = {int(s): b"HTTP/1.1 %d %s\r\n" % (s, s.phrase.encode("ascii")) for s in http.HTTPStatus}
_FIELD_CACHE_SIZE = 512
_field_cache: dict[tuple[str | bytes, str | bytes], tuple[bytes, bytes]] = {}
_lengths: dict[bytes, int] = {}
_length_lines: dict[int, bytes] = {}


def _to_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    return value.encode("latin-1")
