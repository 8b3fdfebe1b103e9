"""A request head parsed in one pass, by h11's grammar and rules (sans-io).

h11 spends about 30 µs on a 100-byte GET, most of it in its generic event and state machinery;
the same grammar applied directly costs a few µs. So every head is parsed here, with h11's
regular expressions and its header rules (Content-Length and Transfer-Encoding normalization,
Host), and h11 itself still parses the bodies: for a request that has one it is handed the same
head, so both must accept it. ``tests/test_head.py`` checks on generated heads that this module
and h11 agree.

On top of h11's rules: versions other than 1.0 and 1.1 get 505; obs-fold, Content-Length
together with Transfer-Encoding and a Host that is not a host get 400 (RFC 9112 sections 5.2,
6.1 and 3.2); an HTTP/1.0 request with Transfer-Encoding closes the connection after it
(section 6.1); CONNECT gets 501, since an origin server has no tunnel to open. A request-target
must be in one of the forms of RFC 9112 section 3.2 (h11 takes any printable run): a path
(origin-form), an absolute ``http``/``https`` URI (absolute-form), ``*`` for OPTIONS; anything
else gets 400.

An absolute-form target is kept as sent, and its authority becomes the request's Host (the
received Host header is ignored, RFC 9112 section 3.2.2), so an app that reads Host, or
rebuilds its URL from it, sees the host the client named in the target.

Where the RFCs ask a recipient to be more lenient than h11 is, this module is: empty elements in
the Transfer-Encoding list are ignored (RFC 9110 section 5.6.1), so ``, chunked`` is chunked.
"""

from __future__ import annotations

import re

from .._config import Settings
from .._errors import ProtocolError
from .._target import ABSOLUTE_FORM

__all__ = ["RequestHead", "parse_head"]

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_REQUEST_LINE = re.compile(rb"(%s) ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])" % _TOKEN)
_VALUE = rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?"
_FIELD = rb"(%s):[ \t]*(%s)[ \t]*" % (_TOKEN, _VALUE)
_HEADER_FIELD = re.compile(_FIELD)
_FIELD_LINE = re.compile(rb"^" + _FIELD + rb"\r?\n", re.MULTILINE)
_SPECIAL_FIELDS = frozenset({b"content-length", b"transfer-encoding", b"host", b"connection", b"expect", b"upgrade"})
_CONTENT_LENGTH = re.compile(rb"[0-9]{1,20}")
_ANY_VERSION = re.compile(rb" HTTP/([0-9]+\.[0-9]+)\Z")
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~%!$&'()*+,;=]*)(?::[0-9]*)?")
_AUTHORITY = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~%!$&'()*+,;=]+)(?::[0-9]*)?")
_HTTP_SCHEMES = frozenset({"http", "https"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class RequestHead:
    """A request line and headers that passed every check, with what the channel needs of them.

    ``headers`` are ``(lower-cased name, value)`` byte pairs in order, as h11 gives them.
    """

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
        "upgrade",
    )

    def __init__(
        self,
        method: str,
        target: str,
        http_version: str,
        headers: list[tuple[bytes, bytes]],
        *,
        connection: bytes,
        expect: bytes,
        content_length: int | None,
        chunked: bool,
        upgrade: bytes = b"",
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.safe = method in _SAFE_METHODS
        options = _tokens(connection)
        if http_version == "1.1":
            self.keep_alive = b"close" not in options
        else:
            self.keep_alive = b"keep-alive" in options and not chunked
        self.expects_continue = expect == b"100-continue" and http_version == "1.1"
        self.content_length = content_length
        self.has_body = chunked or bool(content_length)
        self.upgrade = upgrade
        """The Upgrade field's values, lower-cased (empty without one): whether to look closer."""


def parse_head(head: bytes, settings: Settings) -> RequestHead:
    """Parse ``head``, a request line and headers ending in a blank line, or raise
    :class:`ProtocolError` with the status to answer."""
    if len(head) > settings.max_header_length:
        raise ProtocolError(431, f"request head longer than {settings.max_header_length} bytes")
    line_end = head.index(b"\n")
    request_line = head[:line_end].removesuffix(b"\r")
    if len(request_line) > settings.max_request_line:
        raise ProtocolError(414, f"request line longer than {settings.max_request_line} bytes")
    block = head[line_end + 1 : -2 if head.endswith(b"\r\n") else -1]
    if block.count(b"\n") > settings.max_header_count:
        raise ProtocolError(431, f"more than {settings.max_header_count} header fields")
    method, target, version = _parse_request_line(request_line)
    if method == "CONNECT":
        raise ProtocolError(501, "CONNECT is not supported: this is an origin server, not a proxy")
    authority = None if target[0] == "/" else _target_authority(method, target)
    return _parse_fields(_split_fields(block), method, target, version, authority)


def _target_authority(method: str, target: str) -> bytes | None:
    """Check a target that is not a path (origin-form): ``*`` for OPTIONS, or an absolute
    ``http``/``https`` URI, whose authority (a host, an optional port, no userinfo) is returned."""
    if target == "*":
        if method == "OPTIONS":
            return None
        raise ProtocolError(400, "the request-target * (asterisk-form) is only for OPTIONS")
    match = ABSOLUTE_FORM.fullmatch(target)
    if match is None:
        raise ProtocolError(
            400,
            f"malformed request-target {target[:100]!r}: expected a path, an absolute http(s) URI, or * for OPTIONS",
        )
    if match.group(1).lower() not in _HTTP_SCHEMES:
        raise ProtocolError(400, f"the request-target {target[:100]!r} is not an http or https URI")
    authority = match.group(2)
    if not _AUTHORITY.fullmatch(authority):
        raise ProtocolError(
            400, f"the request-target's authority {authority[:100]!r} is not a host and an optional port"
        )
    return authority.encode("ascii")


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        found = _ANY_VERSION.search(line)
        if found is not None and found.group(1) not in (b"1.1", b"1.0"):
            raise ProtocolError(505, "only HTTP/1.0 and HTTP/1.1 are served here")
        raise ProtocolError(400, f"malformed request line {line[:100]!r}")
    method, target, version = match.groups()
    if version != b"1.1" and version != b"1.0":
        raise ProtocolError(505, "only HTTP/1.0 and HTTP/1.1 are served here")
    return method.decode("ascii"), target.decode("ascii"), version.decode("ascii")


def _parse_fields(
    fields: list[tuple[bytes, bytes]], method: str, target: str, version: str, authority: bytes | None
) -> RequestHead:
    connection = expect = upgrade = b""
    content_length: bytes | None = None
    chunked = False
    hosts = 0
    for name, value in fields:
        if name not in _SPECIAL_FIELDS:
            continue
        if name == b"content-length":
            content_length = _content_length(value, content_length)
        elif name == b"transfer-encoding":
            chunked = _transfer_encoding(value, chunked)
        elif name == b"host":
            hosts += 1
            if not _HOST.fullmatch(value):
                raise ProtocolError(400, f"invalid Host header {value[:100]!r}")
        elif name == b"connection":
            connection += b"," + value.lower()
        elif name == b"upgrade":
            upgrade += b"," + value.lower()
        else:
            expect = value.lower()
    if version == "1.1" and hosts == 0:
        raise ProtocolError(400, "missing Host header (mandatory in HTTP/1.1)")
    if hosts > 1:
        raise ProtocolError(400, "more than one Host header")
    if chunked and content_length is not None:
        raise ProtocolError(400, "Content-Length together with Transfer-Encoding (RFC 9112 section 6.1)")
    if chunked or content_length is not None:
        fields = _normalized(fields, content_length)
    if authority is not None:
        fields = _with_host(fields, authority, hosts)
    return RequestHead(
        method,
        target,
        version,
        fields,
        connection=connection,
        expect=expect,
        content_length=None if content_length is None else int(content_length),
        chunked=chunked,
        upgrade=upgrade,
    )


def _normalized(fields: list[tuple[bytes, bytes]], content_length: bytes | None) -> list[tuple[bytes, bytes]]:
    """The fields as h11 keeps them: one Content-Length with its single value, the
    Transfer-Encoding lower-cased."""
    normalized = []
    for name, value in fields:
        if name == b"content-length":
            if content_length is None:
                continue
            value, content_length = content_length, None
        elif name == b"transfer-encoding":
            value = b"chunked"
        normalized.append((name, value))
    return normalized


def _with_host(fields: list[tuple[bytes, bytes]], authority: bytes, hosts: int) -> list[tuple[bytes, bytes]]:
    """The fields with the Host value replaced by an absolute-form target's authority (added
    when an HTTP/1.0 request has no Host)."""
    if not hosts:
        return [*fields, (b"host", authority)]
    return [(name, authority if name == b"host" else value) for name, value in fields]


def _tokens(value: bytes) -> frozenset[bytes]:
    """The comma-separated options of a (lower-cased) Connection value: ``xclose`` is not
    ``close``."""
    if not value:
        return _NO_TOKENS
    return frozenset(token.strip(b" \t") for token in value.split(b","))


_NO_TOKENS: frozenset[bytes] = frozenset()


def _split_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """Every header line as a (lower-cased name, value) pair; the syntax of all lines is checked
    before any field's meaning, as h11 does, so both report the same error first."""
    fields = _FIELD_LINE.findall(block)
    if len(fields) == block.count(b"\n"):
        return [(name.lower(), value) for name, value in fields]
    for line in block.split(b"\n"):
        line = line.removesuffix(b"\r")
        if not _HEADER_FIELD.fullmatch(line):
            if line[:1] in (b" ", b"\t"):
                raise ProtocolError(400, "obsolete line folding in a header (RFC 9112 section 5.2)")
            raise ProtocolError(400, f"malformed header line {line[:100]!r}")
    raise AssertionError("unreachable: a block with a line that is not a field has a failing line")


def _content_length(value: bytes, seen: bytes | None) -> bytes:
    lengths = {length.strip() for length in value.split(b",")}
    if len(lengths) != 1:
        raise ProtocolError(400, "conflicting Content-Length headers")
    length = lengths.pop()
    if not _CONTENT_LENGTH.fullmatch(length):
        raise ProtocolError(400, f"bad Content-Length {value[:40]!r}")
    if seen is not None and seen != length:
        raise ProtocolError(400, "conflicting Content-Length headers")
    return length


def _transfer_encoding(value: bytes, seen: bool) -> bool:
    """Whether the Transfer-Encoding ``value`` is chunked, the only coding served: alone in
    its list once empty elements are dropped (RFC 9110 section 5.6.1), so that the body's
    framing is never in doubt; anything else is a 501."""
    if seen:
        raise ProtocolError(501, "more than one Transfer-Encoding header")
    lowered = value.lower()
    if lowered != b"chunked":
        codings = [coding for coding in (element.strip(b" \t") for element in lowered.split(b",")) if coding]
        if codings != [b"chunked"]:
            raise ProtocolError(501, "only Transfer-Encoding: chunked is supported")
    return True
