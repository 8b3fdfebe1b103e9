"""The request side of HTTP/1.1 for one connection: h11 wrapped with our limits (sans-io).

h11 parses and validates; around it this module adds what h11 leaves to its user:

- the head's size is counted here, whole, even when it arrives in one read (h11's own limit
  only guards a head that is still incomplete), so 414 and 431 are exact;
- the versions h11 accepts but we do not speak (``HTTP/2.0``, the HTTP/2 preface, ``HTTP/9.9``)
  get 505; Content-Length together with Transfer-Encoding, obs-fold and a repeated Host get 400
  (RFC 9112 sections 6.1, 5.2 and RFC 9110 section 7.2), closing the doors to request smuggling;
- pipelining: one ``h11.Connection`` serves one request, and the next one starts from the bytes
  it left over, so request N+1 can be parsed while response N is still being produced.
"""

from __future__ import annotations

import re
from typing import Union

import h11

from ._config import Settings
from ._errors import ProtocolError

__all__ = ["RequestParser", "RequestHead", "NEED_DATA", "END", "CLOSED", "ABORTED"]


class _Signal:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Signal("NEED_DATA")
"""More bytes are needed before anything else can be said."""
END = _Signal("END")
"""The current request's body is complete; call ``start_next_request`` to parse the next."""
CLOSED = _Signal("CLOSED")
"""The client closed its side between requests: a clean end of input."""
ABORTED = _Signal("ABORTED")
"""The client closed its side in the middle of a request body."""

_BLANK_LINE = re.compile(rb"\n\r?\n")
_OBS_FOLD = re.compile(rb"\n[ \t]")
_VERSION = re.compile(rb"HTTP/(\d+)\.(\d+)\r?\Z")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_NO_BODY = -1

Event = Union["RequestHead", bytes, _Signal]


class RequestHead:
    """A request line and headers that passed every check, with what the channel needs of them."""

    __slots__ = (
        "method",
        "target",
        "http_version",
        "headers",
        "keep_alive",
        "expects_continue",
        "has_body",
        "content_length",
        "safe",
    )

    def __init__(self, event: h11.Request) -> None:
        self.method = event.method.decode("ascii")
        self.target = event.target.decode("ascii")
        self.http_version = event.http_version.decode("ascii")
        self.headers = list(event.headers)
        self.safe = self.method in _SAFE_METHODS
        connection = b""
        expect = b""
        transfer_encoding = False
        content_length: int | None = None
        for name, value in self.headers:
            if name == b"connection":
                connection += b"," + value.lower()
            elif name == b"content-length":
                content_length = int(value)
            elif name == b"transfer-encoding":
                transfer_encoding = True
            elif name == b"expect":
                expect = value.lower()
        if transfer_encoding and content_length is not None:
            raise ProtocolError(400, "Content-Length together with Transfer-Encoding (RFC 9112 section 6.1)")
        if self.http_version == "1.1":
            self.keep_alive = b"close" not in connection
        else:
            self.keep_alive = b"keep-alive" in connection
        self.expects_continue = expect == b"100-continue" and self.http_version == "1.1"
        self.content_length = content_length
        self.has_body = transfer_encoding or bool(content_length)


class RequestParser:
    """Turns the bytes of one connection into request heads, body chunks and ends.

    Feed bytes with :meth:`receive_data` (``b""`` for end of input) and pull events with
    :meth:`next_event` until it returns :data:`NEED_DATA`. A request that breaks HTTP/1.1 or a
    limit raises :class:`ProtocolError` carrying the status to answer; after that the parser is
    spent.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._buffer = bytearray()
        self._search_from = 0
        self._eof = False
        self._h11: h11.Connection | None = None
        self._body_seen = 0
        self._content_length: int | None = 0
        self._in_body = False

    @property
    def has_partial_request(self) -> bool:
        """Whether bytes of a request that is not yet complete have arrived."""
        return self._in_body or bool(self._buffer)

    @property
    def body_remaining(self) -> int | None:
        """Bytes of the current body not yet parsed: 0 when none is left, ``None`` when the body
        is chunked and so of unknown length."""
        if not self._in_body:
            return 0
        if self._content_length is None:
            return None
        return self._content_length - self._body_seen

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the client; ``b""`` means it closed its side."""
        if not data:
            self._eof = True
        if self._in_body:
            assert self._h11 is not None
            self._h11.receive_data(data)
        elif data:
            self._buffer += data

    def next_event(self) -> Event:
        """The next request head, body chunk (``bytes``), :data:`END`, :data:`NEED_DATA`,
        :data:`CLOSED` or :data:`ABORTED`."""
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
        limits = self._settings
        line_end = head.find(b"\n")
        request_line = head[:line_end]
        if len(request_line.rstrip(b"\r")) > limits.max_request_line:
            raise ProtocolError(414, f"request line longer than {limits.max_request_line} bytes")
        if len(head) > limits.max_header_length:
            raise ProtocolError(431, f"request head longer than {limits.max_header_length} bytes")
        if head.count(b"\n") - 2 > limits.max_header_count:
            raise ProtocolError(431, f"more than {limits.max_header_count} header fields")
        version = _VERSION.search(request_line)
        if version is not None and version.group(1, 2) not in ((b"1", b"1"), (b"1", b"0")):
            raise ProtocolError(505, "only HTTP/1.0 and HTTP/1.1 are served here")
        if _OBS_FOLD.search(head, 0, len(head) - 2):
            raise ProtocolError(400, "obsolete line folding in a header (RFC 9112 section 5.2)")
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_length)
        connection.receive_data(head)
        event = _h11_event(connection)
        assert isinstance(event, h11.Request)
        request = RequestHead(event)
        self._start_body(request, connection)
        return request

    def _start_body(self, request: RequestHead, connection: h11.Connection) -> None:
        limit = self._settings.max_body_size
        if limit is not None and request.content_length is not None and request.content_length > limit:
            raise ProtocolError(413, f"request body of {request.content_length} bytes exceeds max_body_size ({limit})")
        if not request.has_body:
            self._buffer_end_of_message()
            return
        self._h11 = connection
        self._content_length = request.content_length
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
                return ABORTED
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
        return ABORTED


def _h11_event(connection: h11.Connection) -> object:
    try:
        return connection.next_event()
    except h11.RemoteProtocolError as error:
        raise ProtocolError(error.error_status_hint, str(error)) from None
