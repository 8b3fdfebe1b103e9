"""The head parser agrees with h11 on every head, except where we are deliberately stricter."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_httpchannel import ProtocolError, Settings
from trio_httpchannel._head import parse_head

LIMITS = Settings(max_header_length=1 << 20, max_request_line=1 << 19, max_header_count=1000)

pieces = st.sampled_from([b"a", b"Z", b"0", b"-", b"!", b"~", b" ", b"\t", b":", b",", b";", b"\x00", b"\r", b"\x7f", b"\xff", b"\x0b", b"/", b"?", b"="])
methods = st.one_of(st.sampled_from([b"GET", b"POST", b"HEAD", b"PRI", b"M-SEARCH", b""]), st.binary(max_size=6))
targets = st.one_of(st.sampled_from([b"/", b"*", b"/a?b=c", b"http://x/y", b"", b"/ /"]), st.lists(pieces, max_size=6).map(b"".join))
versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/9.9", b"HTTP/1.10", b"http/1.1", b"HTTP/1.1 "])
names = st.one_of(
    st.sampled_from([b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Expect", b"X-A", b"host", b"TRANSFER-ENCODING"]),
    st.lists(pieces, min_size=0, max_size=4).map(b"".join),
)
values = st.one_of(
    st.sampled_from([b"x", b"5", b" 5 ", b"5, 5", b"5, 6", b"+5", b"0x5", b"chunked", b"Chunked", b"chunked, identity", b"gzip", b"close", b"keep-alive", b"100-continue", b"", b"99999999999999999999999"]),
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
    """The rejections we add on purpose: other versions, obs-fold, CL with TE."""
    return (
        error.status == 505
        or "folding" in error.message
        or "Content-Length together with Transfer-Encoding" in error.message
        or "invalid Host" in error.message
    )


@settings(max_examples=1500, deadline=None)
@given(heads())
def test_head_parser_agrees_with_h11(head: bytes):
    if head.split(b"\n", 1)[0][:1] in (b"", b"\r") or head[:1] < b"\x21":
        return
    theirs = h11_parse(head)
    try:
        ours = parse_head(head, LIMITS)
    except ProtocolError as error:
        if isinstance(theirs, h11.Request):
            assert stricter_than_h11(head, error), (head, error.message)
        else:
            assert error.status == theirs.error_status_hint or stricter_than_h11(head, error), (head, error.message, theirs)
        return
    assert isinstance(theirs, h11.Request), (head, theirs)
    assert ours.method.encode() == theirs.method
    assert ours.target.encode() == theirs.target
    assert ours.http_version.encode() == theirs.http_version
    assert ours.headers == list(theirs.headers)


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
