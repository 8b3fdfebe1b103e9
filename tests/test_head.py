"""The head parser agrees with h11 on every head, except where we are deliberately stricter."""

from __future__ import annotations

import h11
import pytest
from conftest import as_rfc_9110_reads_it
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_httpchannel import ProtocolError, Settings
from trio_httpchannel._target import split_target
from trio_httpchannel.http1.head import parse_head

LIMITS = Settings(max_header_length=1 << 20, max_request_line=1 << 19, max_header_count=1000)

pieces = st.sampled_from(
    [
        b"a",
        b"Z",
        b"0",
        b"-",
        b"!",
        b"~",
        b" ",
        b"\t",
        b":",
        b",",
        b";",
        b"\x00",
        b"\r",
        b"\x7f",
        b"\xff",
        b"\x0b",
        b"/",
        b"?",
        b"=",
    ]
)
methods = st.one_of(st.sampled_from([b"GET", b"POST", b"HEAD", b"PRI", b"M-SEARCH", b""]), st.binary(max_size=6))
targets = st.one_of(
    st.sampled_from([b"/", b"*", b"/a?b=c", b"http://x/y", b"https://x:1?q", b"http://x", b"", b"/ /"]),
    st.lists(pieces, max_size=6).map(b"".join),
)
versions = st.sampled_from(
    [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/9.9", b"HTTP/1.10", b"http/1.1", b"HTTP/1.1 "]
)
names = st.one_of(
    st.sampled_from(
        [
            b"Host",
            b"Content-Length",
            b"Transfer-Encoding",
            b"Connection",
            b"Expect",
            b"X-A",
            b"host",
            b"TRANSFER-ENCODING",
        ]
    ),
    st.lists(pieces, min_size=0, max_size=4).map(b"".join),
)
values = st.one_of(
    st.sampled_from(
        [
            b"x",
            b"5",
            b" 5 ",
            b"5, 5",
            b"5, 6",
            b"+5",
            b"0x5",
            b"chunked",
            b"Chunked",
            b"chunked, identity",
            b",chunked",
            b"chunked, ",
            b", ,",
            b"gzip",
            b"close",
            b"keep-alive",
            b"100-continue",
            b"",
            b"99999999999999999999999",
        ]
    ),
    st.lists(pieces, max_size=8).map(b"".join),
)
separators = st.sampled_from([b": ", b":", b" : ", b":\t"])
endings = st.sampled_from([b"\r\n", b"\n"])


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    ending = draw(endings)
    line = draw(methods) + b" " + draw(targets) + b" " + draw(versions)
    fields = draw(st.lists(st.tuples(names, separators, values), max_size=6))
    if draw(st.booleans()):
        fields.insert(draw(st.integers(0, len(fields))), (b"Host", b": ", b"example.com"))
    lines = [line] + [name + separator + value for name, separator, value in fields]
    return ending.join(lines) + ending + ending


def h11_parse(head: bytes) -> h11.Request | h11.RemoteProtocolError:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(head)
    try:
        event = connection.next_event()
    except h11.RemoteProtocolError as error:
        return error
    assert isinstance(event, h11.Request), event
    return event


def stricter_than_h11(head: bytes, error: ProtocolError) -> bool:
    """The rejections we add on purpose: other versions, obs-fold, CL with TE, a Host or a
    request-target of none of the RFC's forms."""
    return (
        error.status == 505
        or "folding" in error.message
        or "Content-Length together with Transfer-Encoding" in error.message
        or "invalid Host" in error.message
        or "request-target" in error.message
    )


def as_we_read_them(request: h11.Request) -> list[tuple[bytes, bytes]]:
    """h11's fields with the one change we make on purpose: an absolute-form target's
    authority is the Host (RFC 9112 section 3.2.2)."""
    fields = list(request.headers)
    if request.target.startswith(b"/") or request.target == b"*":
        return fields
    authority = request.target.split(b"://", 1)[1].split(b"/", 1)[0].split(b"?", 1)[0]
    if not any(name == b"host" for name, _ in fields):
        return [*fields, (b"host", authority)]
    return [(name, authority if name == b"host" else value) for name, value in fields]


@settings(max_examples=1500, deadline=None)
@given(heads())
def test_head_parser_agrees_with_h11(head: bytes):
    if head.split(b"\n", 1)[0][:1] in (b"", b"\r") or head[:1] < b"\x21":
        return
    theirs = h11_parse(as_rfc_9110_reads_it(head))
    try:
        ours = parse_head(head, LIMITS)
    except ProtocolError as error:
        if isinstance(theirs, h11.Request):
            assert stricter_than_h11(head, error), (head, error.message)
        else:
            assert error.status == theirs.error_status_hint or stricter_than_h11(head, error), (
                head,
                error.message,
                theirs,
            )
        return
    assert isinstance(theirs, h11.Request), (head, theirs)
    assert ours.method.encode() == theirs.method
    assert ours.target.encode() == theirs.target
    assert ours.http_version.encode() == theirs.http_version
    assert ours.headers == as_we_read_them(theirs)


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    ],
    ids=["obs-fold", "cl-and-te", "http/9.9", "host-with-space"],
)
def test_stricter_than_h11_on_purpose(head: bytes):
    assert isinstance(h11_parse(head), h11.Request)
    with pytest.raises(ProtocolError) as raised:
        parse_head(head, LIMITS)
    assert stricter_than_h11(head, raised.value)


def head_of(request_line: bytes, *fields: bytes) -> bytes:
    return b"\r\n".join([request_line, *fields]) + b"\r\n\r\n"


def test_absolute_form_target_is_kept_as_sent():
    parsed = parse_head(head_of(b"GET http://example.com/a%20b?q=1 HTTP/1.1", b"Host: other"), LIMITS)
    assert parsed.target == "http://example.com/a%20b?q=1"


def test_absolute_form_authority_replaces_the_host_header():
    """RFC 9112 section 3.2.2: the Host header is ignored for the target's authority."""
    parsed = parse_head(head_of(b"GET HTTP://Example.com:8080/p HTTP/1.1", b"Host: other", b"X-A: 1"), LIMITS)
    assert parsed.headers == [(b"host", b"Example.com:8080"), (b"x-a", b"1")]


def test_absolute_form_gives_an_http10_request_without_host_its_authority_as_host():
    parsed = parse_head(head_of(b"GET http://example.com/p HTTP/1.0"), LIMITS)
    assert parsed.headers == [(b"host", b"example.com")]


@pytest.mark.parametrize(
    "target, path, query",
    [
        ("http://example.com/a%20b?q=1", "/a%20b", "q=1"),
        ("http://example.com", "/", ""),
        ("https://example.com?q=1", "/", "q=1"),
        ("http://[::1]:8000/a?b?c", "/a", "b?c"),
        ("/a%20b?q=1", "/a%20b", "q=1"),
        ("/a?", "/a", ""),
        ("*", "*", ""),
    ],
)
def test_path_and_query_of_each_target_form(target: str, path: str, query: str):
    assert split_target(target) == (path, query)


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET foo HTTP/1.1",
        b"GET foo/bar HTTP/1.1",
        b"GET ?q=1 HTTP/1.1",
        b"GET * HTTP/1.1",
        b"OPTIONS *x HTTP/1.1",
        b"GET example.com:80 HTTP/1.1",
        b"GET http:/x HTTP/1.1",
        b"GET http:// HTTP/1.1",
        b"GET http://:80/ HTTP/1.1",
        b"GET http://user@example.com/ HTTP/1.1",
        b"GET ftp://example.com/ HTTP/1.1",
        b"GET urn:isbn:0451450523 HTTP/1.1",
    ],
    ids=[
        "bare word",
        "relative path",
        "query only",
        "asterisk for get",
        "asterisk with a suffix",
        "authority-form for get",
        "http uri without authority",
        "http uri with an empty authority",
        "http uri with an empty host",
        "userinfo (RFC 9110 section 4.2.4)",
        "not an http uri",
        "urn",
    ],
)
def test_target_in_none_of_the_forms_is_400(request_line: bytes):
    with pytest.raises(ProtocolError) as raised:
        parse_head(head_of(request_line, b"Host: x"), LIMITS)
    assert raised.value.status == 400
    assert "request-target" in raised.value.message


def test_asterisk_form_is_accepted_for_options():
    assert parse_head(head_of(b"OPTIONS * HTTP/1.1", b"Host: x"), LIMITS).target == "*"


@pytest.mark.parametrize("value", [b",chunked", b"chunked,", b" , chunked , ,", b"CHUNKED,"])
def test_empty_transfer_encoding_list_elements_are_ignored(value: bytes):
    """RFC 9110 section 5.6.1: a recipient ignores empty list elements, where h11 refuses."""
    parsed = parse_head(head_of(b"POST / HTTP/1.1", b"Host: x", b"Transfer-Encoding: " + value), LIMITS)
    assert parsed.has_body and parsed.content_length is None
    assert (b"transfer-encoding", b"chunked") in parsed.headers


@pytest.mark.parametrize("value", [b",", b", ,", b"gzip, chunked", b"chunked, , chunked", b"chunked,identity"])
def test_transfer_encoding_other_than_chunked_alone_is_501(value: bytes):
    with pytest.raises(ProtocolError) as raised:
        parse_head(head_of(b"POST / HTTP/1.1", b"Host: x", b"Transfer-Encoding: " + value), LIMITS)
    assert raised.value.status == 501
