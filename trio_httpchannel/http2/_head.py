"""An HTTP/2 request's header list checked as RFC 9113 section 8 asks, and a response as the
header list of a HEADERS frame (sans-io).

h2 can check request headers itself, but it makes every malformed request a connection error
(GOAWAY), which ends the client's other streams too; RFC 9113 section 8.1.1 makes it a stream
error. So h2's inbound validation is off and this module checks the same rules (and h11's
grammar for names and values), so that only the malformed stream is reset.

An extended CONNECT (RFC 8441: ``:protocol``, with ``:scheme``, ``:path`` and an authority) is
a request only where the connection advertised SETTINGS_ENABLE_CONNECT_PROTOCOL; elsewhere
``:protocol`` is an unknown pseudo-header, so malformed, as RFC 8441 section 3 expects of a
server that does not support it. A plain CONNECT is answered ``501``, as over HTTP/1.1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .._errors import ProtocolError
from .._file import FileBody
from .._response import HeaderPairs, Response, header_pairs, http_date

__all__ = [
    "MalformedRequest",
    "RequestHead",
    "informational_fields",
    "parse_request_head",
    "response_fields",
    "tunnel_fields",
]

Field = tuple[bytes, bytes]

_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-z]+")
_VALUE = re.compile(rb"(?:[^\x00\r\n\t ](?:[^\x00\r\n]*[^\x00\r\n\t ])?)?")
_METHOD = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_SCHEME = re.compile(rb"[a-zA-Z][a-zA-Z0-9+.-]*")
_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path"})
_EXTENDED_PSEUDO = _PSEUDO | {b":protocol"}
_CONNECTION_SPECIFIC = frozenset({b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"})
_RESPONSE_DROPPED = _CONNECTION_SPECIFIC | {b"content-length"}
_SERVER = (b"server", b"trio-httpchannel")
_CACHE_SIZE = 512
_CACHED_REQUEST_FIELD = 512
"""Bytes of name and value up to which a request field that passed is remembered, so that
what clients send can make the memory hold at most 256 KiB."""
_checked_request_fields: set[Field] = set()
_checked_response_fields: dict[tuple[str | bytes, str | bytes], Field] = {}


class MalformedRequest(Exception):
    """The request breaks RFC 9113 section 8: its stream is reset with PROTOCOL_ERROR."""


class RequestHead:
    """A checked request: its method, its target (the ``:path``) and its fields, the
    ``:authority`` first as ``host`` (so that a handler, and the ASGI scope, find it where
    HTTP/1.1 puts it). ``protocol`` is the ``:protocol`` of an extended CONNECT, else ``None``."""

    __slots__ = ("method", "target", "fields", "protocol")

    def __init__(self, method: str, target: str, fields: list[Field], protocol: str | None = None) -> None:
        self.method = method
        self.target = target
        self.fields = fields
        self.protocol = protocol


def parse_request_head(
    fields: Sequence[Field], *, max_header_count: int, extended_connect: bool = False
) -> RequestHead:
    """Check a request's header list as h2 decoded it (bytes, cookies joined).
    ``extended_connect``: the connection advertised SETTINGS_ENABLE_CONNECT_PROTOCOL.

    Raises :class:`MalformedRequest` for what RFC 9113 (and RFC 8441) call malformed, and
    :class:`ProtocolError` for more than ``max_header_count`` fields (431) or a CONNECT without
    ``:protocol`` (501: an origin server has no tunnel to open).
    """
    known = _EXTENDED_PSEUDO if extended_connect else _PSEUDO
    pseudo: dict[bytes, bytes] = {}
    regular: list[Field] = []
    host: bytes | None = None
    for name, value in fields:
        if name[:1] == b":":
            if regular:
                raise MalformedRequest(f"pseudo-header {_show(name)} after a regular field")
            if name not in known:
                raise MalformedRequest(f"unknown pseudo-header {_show(name)}")
            if name in pseudo:
                raise MalformedRequest(f"pseudo-header {_show(name)} repeated")
            _check_value(name, value)
            pseudo[name] = value
            continue
        if (name, value) not in _checked_request_fields:
            _check_field(name, value)
        if name == b"host":
            if host is not None:
                raise MalformedRequest("more than one host field")
            host = value
            continue
        regular.append((name, value))
    if len(regular) > max_header_count:
        raise ProtocolError(431, f"more than max_header_count ({max_header_count}) header fields")
    method, target = _method_and_target(pseudo)
    authority = pseudo.get(b":authority")
    if authority is not None and host is not None and host != authority:
        raise MalformedRequest("the host field and :authority differ")
    authority = authority if authority is not None else host
    protocol = pseudo.get(b":protocol")
    if authority is not None:
        if b"@" in authority:
            raise MalformedRequest(":authority must not carry userinfo")
        regular.insert(0, (b"host", authority))
    elif protocol is not None:
        raise MalformedRequest("an extended CONNECT names its authority (:authority, or a host field)")
    return RequestHead(method, target, regular, None if protocol is None else protocol.decode("latin-1"))


def _method_and_target(pseudo: dict[bytes, bytes]) -> tuple[str, str]:
    method = pseudo.get(b":method")
    if method is None:
        raise MalformedRequest("no :method pseudo-header")
    if not _METHOD.fullmatch(method):
        raise MalformedRequest(f"malformed :method {_show(method)}")
    if b":protocol" in pseudo:
        if method != b"CONNECT":
            raise MalformedRequest(f":protocol on a {_show(method)} request, not a CONNECT")
    elif method == b"CONNECT":
        if b":authority" not in pseudo or b":scheme" in pseudo or b":path" in pseudo:
            raise MalformedRequest("CONNECT takes :authority and neither :scheme nor :path")
        raise ProtocolError(501, "CONNECT is not supported: this is an origin server, not a proxy")
    scheme = pseudo.get(b":scheme")
    path = pseudo.get(b":path")
    if scheme is None or path is None:
        raise MalformedRequest("a request needs :method, :scheme and :path pseudo-headers")
    if not _SCHEME.fullmatch(scheme):
        raise MalformedRequest(f"malformed :scheme {_show(scheme)}")
    if not (path[:1] == b"/" or (path == b"*" and method == b"OPTIONS")):
        raise MalformedRequest(f":path {_show(path)} is neither a path nor * for OPTIONS")
    return method.decode("ascii"), path.decode("latin-1")


def _check_field(name: bytes, value: bytes) -> None:
    """Raise :class:`MalformedRequest` unless ``name: value`` is a field HTTP/2 allows.

    Clients send the same fields on every request (user-agent, accept, ...): a short field
    that passed is remembered (at most ``_CACHE_SIZE`` of them, then the memory starts
    afresh), so that seeing it again costs one set lookup."""
    if not _NAME.fullmatch(name):
        raise MalformedRequest(f"malformed field name {_show(name)} (HTTP/2 names are lower-case tokens)")
    if name in _CONNECTION_SPECIFIC:
        raise MalformedRequest(f"connection-specific field {_show(name)}")
    if name == b"te" and value.lower() != b"trailers":
        raise MalformedRequest("te other than trailers")
    _check_value(name, value)
    if len(name) + len(value) <= _CACHED_REQUEST_FIELD:
        if len(_checked_request_fields) >= _CACHE_SIZE:
            _checked_request_fields.clear()
        _checked_request_fields.add((name, value))


def _check_value(name: bytes, value: bytes) -> None:
    if not _VALUE.fullmatch(value):
        raise MalformedRequest(f"malformed value of {_show(name)}: NUL, CR, LF, or whitespace at an end")


def _show(raw: bytes) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


class ResponseFields:
    """The header list of a response, and what the body framing needs from it."""

    __slots__ = ("fields", "length", "has_body")

    def __init__(self, fields: list[Field], length: int | None, has_body: bool) -> None:
        self.fields = fields
        self.length = length
        self.has_body = has_body


def response_fields(response: Response, method: str) -> ResponseFields:
    """``response``'s HEADERS for a request of ``method``: ``:status`` first, names lower-cased,
    the fields HTTP/2 forbids dropped (``Connection``, ``Transfer-Encoding``, ...), and the
    content-length of a body whose length is known. Raises ``ValueError`` for a header that is
    not a token name with a value free of NUL, CR and LF, or a length that does not match."""
    fields, declared = _fields(response.status, response.headers)
    length, has_body = _framing(response, method, declared)
    if length is not None:
        fields.append((b"content-length", b"%d" % length))
    return ResponseFields(fields, length, has_body)


def tunnel_fields(headers: HeaderPairs) -> list[Field]:
    """The HEADERS of the ``200`` accepting an extended CONNECT (a WebSocket, RFC 8441), with
    ``headers``: no content-length, which a 2xx to CONNECT must not carry (RFC 9110 section
    9.3.6). Raises ``ValueError`` as :func:`response_fields` does."""
    return _fields(200, header_pairs(headers))[0]


def _fields(status: int, headers: Sequence[tuple[str | bytes, str | bytes]]) -> tuple[list[Field], int | None]:
    """``:status`` and the checked ``headers`` HTTP/2 may carry, then date and server unless
    the headers have them; and the content-length declared (its field is left to the caller)."""
    fields: list[Field] = [(b":status", b"%d" % status)]
    declared: int | None = None
    has_date = has_server = False
    for name, value in headers:
        raw_name, raw_value = _checked_response_fields.get((name, value)) or _response_field(name, value)
        if raw_name in _RESPONSE_DROPPED:
            if raw_name == b"content-length":
                declared = _parse_length(raw_value, declared)
            continue
        has_date = has_date or raw_name == b"date"
        has_server = has_server or raw_name == b"server"
        fields.append((raw_name, raw_value))
    if not has_date:
        fields.append((b"date", http_date()))
    if not has_server:
        fields.append(_SERVER)
    return fields, declared


def informational_fields(status: int, headers: HeaderPairs) -> list[Field]:
    """The HEADERS of an informational (1xx) response such as ``103 Early Hints``, checked as
    a final response's are, connection-specific fields dropped. Raises ``ValueError`` for a
    status that is not 1xx or a header that cannot be sent."""
    if not 100 <= status <= 199:
        raise ValueError(f"an informational status is from 100 to 199, got {status!r}")
    fields: list[Field] = [(b":status", b"%d" % status)]
    for name, value in header_pairs(headers):
        field = _checked_response_fields.get((name, value)) or _response_field(name, value)
        if field[0] not in _RESPONSE_DROPPED:
            fields.append(field)
    return fields


def _response_field(name: str | bytes, value: str | bytes) -> Field:
    """One response header as HTTP/2 sends it (the name lower-cased, the value stripped),
    checked. Handlers send the same few headers again and again, so a checked one is
    remembered (at most ``_CACHE_SIZE`` of them): seeing it again costs one dict lookup."""
    raw_name = _to_bytes(name).lower()
    raw_value = _to_bytes(value).strip(b" \t")
    if not _NAME.fullmatch(raw_name):
        raise ValueError(f"illegal response header name {raw_name!r}")
    if not _VALUE.fullmatch(raw_value):
        raise ValueError(f"illegal value for response header {raw_name!r}: {raw_value!r}")
    if len(_checked_response_fields) >= _CACHE_SIZE:
        _checked_response_fields.clear()
    field = _checked_response_fields[(name, value)] = (raw_name, raw_value)
    return field


def _framing(response: Response, method: str, declared: int | None) -> tuple[int | None, bool]:
    if response.status in (204, 304):
        return (declared if response.status == 304 else None), False
    body = response.body
    size = (
        len(body)
        if isinstance(body, (bytes, bytearray, memoryview))
        else body.size
        if isinstance(body, FileBody)
        else None
    )
    if size is not None:
        if declared is not None and declared != size and method != "HEAD":
            raise ValueError(f"Content-Length {declared} does not match the {size}-byte response body")
        declared = size if declared is None else declared
    return declared, method != "HEAD"


def _parse_length(value: bytes, previous: int | None) -> int:
    if not value.isdigit() or len(value) > 18:
        raise ValueError(f"illegal Content-Length response header {value!r}")
    length = int(value)
    if previous is not None and previous != length:
        raise ValueError(f"conflicting Content-Length response headers {previous} and {length}")
    return length


def _to_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")
