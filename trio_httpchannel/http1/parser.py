"""The request side of HTTP/1.1 for one connection: heads, bodies and their ends (sans-io).

- Heads are found and measured here, whole, even when one arrives in a single read (h11's own
  limit only guards a head that is still incomplete), so 414 and 431 are exact, and parsed by
  ``head.parse_head`` with h11's grammar.
- Bodies are parsed by h11: a request with a body gets its own ``h11.Connection``, fed its head
  as read here (its fields normalized, so h11 frames the body exactly as ``head`` did, even
  where the RFC asks for more leniency than h11 has) and then the body bytes. After the body,
  the bytes it left over start the next request, so request N+1 can be parsed while response
  N is still being produced (one ``h11.Connection`` would be ``PAUSED`` until its response was
  sent through it).
"""

from __future__ import annotations

import enum
import re
from typing import Union

import h11

from .._config import Settings
from .._errors import ProtocolError
from .head import RequestHead, parse_head

__all__ = ["RequestParser", "Signal", "NEED_DATA", "END", "CLOSED", "TRUNCATED"]


class Signal(enum.Enum):
    """What :meth:`RequestParser.next_event` says when it has no head or body chunk to give.

    Each member is also a module name (``NEED_DATA`` ...), and the channel compares events with
    those: on CPython 3.11 looking a member up on its class (``Signal.END``) costs ten times an
    identity check against a module name, since ``enum.EnumType`` defines ``__getattr__``."""

    NEED_DATA = "more bytes are needed before anything else can be said"
    END = "the current request's body is complete; call start_next_request to parse the next"
    CLOSED = "the client closed its side between requests: a clean end of input"
    TRUNCATED = "the client closed its side in the middle of a request body"


NEED_DATA = Signal.NEED_DATA
END = Signal.END
CLOSED = Signal.CLOSED
TRUNCATED = Signal.TRUNCATED

_BLANK_LINE = re.compile(rb"\n\r?\n")

Event = Union[RequestHead, bytes, Signal]


class RequestParser:
    """Turns the bytes of one connection into request heads, body chunks and ends.

    Feed bytes with :meth:`receive_data` (``b""`` for end of input) and pull events with
    :meth:`next_event` until it returns :data:`NEED_DATA`. A request that breaks HTTP/1.1 or a
    limit raises :class:`ProtocolError` carrying the status to answer; after that the parser is
    spent. Slotted: every connection keeps one, idle ones too.
    """

    __slots__ = (
        "_settings",
        "_buffer",
        "_search_from",
        "_eof",
        "_h11",
        "_body_seen",
        "_content_length",
        "_in_body",
        "refused_head",
    )

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._buffer = bytearray()
        self._search_from = 0
        self._eof = False
        self._h11: h11.Connection | None = None
        self._body_seen = 0
        self._content_length: int | None = 0
        self._in_body = False
        self.refused_head: RequestHead | None = None
        """The head of the request refused by the last :class:`ProtocolError`, when it could be
        parsed (a Content-Length over ``max_body_size``), so that its answer can be logged with
        its request line."""

    @property
    def has_partial_request(self) -> bool:
        """Whether bytes of a request that is not yet complete have arrived."""
        return self._in_body or bool(self._buffer)

    @property
    def closed(self) -> bool:
        """Whether the client's end of input was received (``receive_data(b"")``)."""
        return self._eof

    @property
    def has_buffered_data(self) -> bool:
        """Whether bytes beyond the current request have arrived (a pipelined request)."""
        return bool(self._buffer)

    @property
    def body_remaining(self) -> int | None:
        """Bytes of the current body not yet parsed: 0 when none is left, ``None`` when the body
        is chunked and so of unknown length."""
        if not self._in_body:
            return 0
        if self._content_length is None:
            return None
        return self._content_length - self._body_seen

    @property
    def trailing_data(self) -> bytes:
        """The bytes received after the last request (head and body) parsed: what a connection
        that stops speaking HTTP after that request (an upgrade) was sent next."""
        return bytes(self._buffer)

    def receive_data(self, data: bytes | bytearray) -> None:
        """Add bytes read from the client; ``b""`` means it closed its side."""
        if not data:
            self._eof = True
        if self._in_body:
            assert self._h11 is not None
            self._h11.receive_data(bytes(data) if isinstance(data, bytearray) else data)
        elif data:
            self._buffer += data

    def next_event(self) -> Event:
        """The next request head, body chunk (``bytes``), :data:`END`, :data:`NEED_DATA`,
        :data:`CLOSED` or :data:`TRUNCATED`."""
        if self._in_body:
            return self._next_body_event()
        return self._next_head()

    def start_next_request(self) -> None:
        """Begin parsing the request after the one whose :data:`END` was returned."""
        if self._h11 is not None:
            leftover, _ = self._h11.trailing_data
            self._buffer[:0] = leftover
            self._h11 = None
        self._in_body = False
        self._body_seen = 0
        self._search_from = 0

    def _next_head(self) -> Event:
        buffer = self._buffer
        while buffer[:1] == b"\n" or buffer[:2] == b"\r\n":
            del buffer[: 1 if buffer[:1] == b"\n" else 2]
        if not buffer:
            return CLOSED if self._eof else NEED_DATA
        if buffer[0] < 0x21:
            raise ProtocolError(400, "malformed request line (is this TLS sent to a plain HTTP port?)")
        match = _BLANK_LINE.search(buffer, self._search_from)
        if match is None:
            self._check_incomplete_head()
            if self._eof:
                raise ProtocolError(400, "the client closed its side before the request head was complete")
            self._search_from = max(0, len(buffer) - 2)
            return NEED_DATA
        end = match.end()
        head = bytes(buffer[:end])
        del buffer[:end]
        self._search_from = 0
        return self._parse_head(head)

    def _check_incomplete_head(self) -> None:
        buffer = self._buffer
        line_end = buffer.find(b"\n")
        limits = self._settings
        if (line_end == -1 and len(buffer) > limits.max_request_line) or line_end > limits.max_request_line:
            raise ProtocolError(414, f"request line longer than {limits.max_request_line} bytes")
        if len(buffer) > limits.max_header_length:
            raise ProtocolError(431, f"request head longer than {limits.max_header_length} bytes")

    def _parse_head(self, head: bytes) -> Event:
        request = parse_head(head, self._settings)
        limit = self._settings.max_body_size
        if limit is not None and request.content_length is not None and request.content_length > limit:
            self.refused_head = request
            raise ProtocolError(413, f"request body of {request.content_length} bytes exceeds max_body_size ({limit})")
        if request.has_body:
            self._start_body(_normalized_head(request), request.content_length)
        else:
            self._buffer_end_of_message()
        return request

    def _start_body(self, head: bytes, content_length: int | None) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=self._settings.max_header_length)
        connection.receive_data(head)
        if not isinstance(_h11_event(connection), h11.Request):
            raise ProtocolError(400, "malformed request head")
        self._h11 = connection
        self._content_length = content_length
        self._in_body = True
        if self._buffer:
            connection.receive_data(bytes(self._buffer))
            self._buffer.clear()
        if self._eof:
            connection.receive_data(b"")

    def _buffer_end_of_message(self) -> None:
        self._in_body = True
        self._h11 = None
        self._content_length = 0

    def _next_body_event(self) -> Event:
        connection = self._h11
        if connection is None:
            self._in_body = False
            return END
        try:
            event = _h11_event(connection)
        except ProtocolError:
            if self._eof:
                return TRUNCATED
            raise
        if isinstance(event, h11.Data):
            self._body_seen += len(event.data)
            limit = self._settings.max_body_size
            if limit is not None and self._body_seen > limit:
                raise ProtocolError(413, f"request body exceeds max_body_size ({limit} bytes)")
            return bytes(event.data)
        if isinstance(event, h11.EndOfMessage):
            self._in_body = False
            return END
        if event is h11.NEED_DATA:
            return NEED_DATA
        return TRUNCATED


def _normalized_head(request: RequestHead) -> bytes:
    """``request``'s head as ``_head`` read it: one Content-Length value, ``Transfer-Encoding:
    chunked`` however it was spelled (``, chunked`` is chunked for RFC 9110, not for h11)."""
    lines = [b"%s %s HTTP/%s\r\n" % (request.method.encode(), request.target.encode(), request.http_version.encode())]
    lines += [b"%s: %s\r\n" % field for field in request.headers]
    lines.append(b"\r\n")
    return b"".join(lines)


def _h11_event(connection: h11.Connection) -> object:
    try:
        return connection.next_event()
    except h11.RemoteProtocolError as error:
        raise ProtocolError(error.error_status_hint, str(error)) from None
