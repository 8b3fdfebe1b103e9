"""The sans-io response serializer: framing and header rules, without sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from trio_httpchannel import Response
from trio_httpchannel._response import takes_trailers, trailer_fields
from trio_httpchannel.http1.serializer import Framing, last_chunk, serialize_head


async def stream() -> AsyncIterator[bytes]:
    yield b"x"


def head(response: Response, method: str = "GET", version: str = "1.1", keep_alive: bool = True):
    return serialize_head(response, method=method, http_version=version, keep_alive=keep_alive)


def test_bytes_body_gets_content_length_and_reason_phrase():
    serialized = head(Response(200, [("content-type", "text/plain")], b"hello"))
    assert serialized.data.startswith(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 5\r\n")
    assert serialized.framing is Framing.LENGTH


def test_date_and_server_added_unless_given():
    added = head(Response(200)).data
    assert b"\r\nDate: " in added and b"\r\nServer: trio-httpchannel\r\n" in added
    given = head(Response(200, [("date", "yesterday"), ("server", "mine")])).data
    assert given.count(b"Date") + given.count(b"date") == 1
    assert b"trio-httpchannel" not in given


def test_stream_is_chunked_for_http11_and_close_delimited_for_http10():
    assert head(Response(200, [], stream())).framing is Framing.CHUNKED
    http10 = head(Response(200, [], stream()), version="1.0")
    assert http10.framing is Framing.CLOSE and not http10.keep_alive


def test_handler_transfer_encoding_and_connection_fields_are_ours():
    serialized = head(Response(200, [("transfer-encoding", "gzip"), ("connection", "upgrade")], b"x"))
    assert b"gzip" not in serialized.data and b"upgrade" not in serialized.data


def test_connection_close_from_handler_ends_persistence():
    assert not head(Response(200, [("Connection", "Close")], b"")).keep_alive


def test_no_body_framing_for_head_204_and_304():
    assert head(Response(200, [], b"abc"), method="HEAD").framing is Framing.NONE
    assert b"Content-Length" not in head(Response(204)).data
    assert b"Content-Length" not in head(Response(304)).data


@pytest.mark.parametrize(
    "name, value",
    [("x-a", "one\r\ntwo"), ("x-a", "nul\x00"), ("x a", "v"), ("x-a:", "v"), ("", "v"), ("x-a", "bare\rcr")],
)
def test_header_that_could_split_the_response_is_refused(name, value):
    with pytest.raises(ValueError, match="illegal"):
        head(Response(200, [(name, value)], b""))


def test_content_length_mismatching_bytes_body_is_refused():
    with pytest.raises(ValueError, match="does not match"):
        head(Response(200, [("content-length", "3")], b"hello"))


def test_content_length_is_checked_again_on_every_response_that_gives_it():
    assert head(Response(200, [("content-length", "5")], b"hello")).length == 5
    assert head(Response(200, [("content-length", "5")], b"hello")).length == 5
    with pytest.raises(ValueError, match="does not match"):
        head(Response(200, [("content-length", "5")], b"hello!"))


@pytest.mark.parametrize("value", ["5x", "-5", "1" * 19])
def test_content_length_that_is_not_a_number_is_refused(value):
    with pytest.raises(ValueError, match="illegal Content-Length"):
        head(Response(200, [("content-length", value)], b"hello"))


def test_conflicting_content_lengths_are_refused_and_equal_ones_taken():
    assert head(Response(200, [("content-length", "5"), ("Content-Length", "5")], b"hello")).length == 5
    with pytest.raises(ValueError, match="conflicting"):
        head(Response(200, [("content-length", "5"), ("content-length", "6")], b"hello"))


def test_keep_alive_announced_to_http10_client():
    assert b"Connection: keep-alive\r\n" in head(Response(200), version="1.0").data


def test_headers_may_be_a_mapping():
    serialized = head(Response(200, {"content-type": "text/plain", b"x-a": b"1"}, b"hello"))
    assert serialized.data.startswith(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-a: 1\r\n")


@pytest.mark.parametrize(
    "headers",
    [
        [("content-type", "text/plain")],
        (("content-type", "text/plain"),),
        [["content-type", "text/plain"]],
        iter([(b"content-type", b"text/plain")]),
    ],
    ids=["list of tuples", "tuple of tuples", "list of lists", "iterator of byte pairs"],
)
def test_headers_may_be_any_iterable_of_pairs(headers):
    assert b"\r\ncontent-type: text/plain\r\n" in head(Response(200, headers, b"")).data


@pytest.mark.parametrize(
    "headers",
    [
        "content-type: text/plain",
        [("content-type",)],
        [("a", "b", "c")],
        ["ab"],
        [("content-length", 5)],
        {"x-a": None},
        42,
    ],
    ids=["a str", "a 1-tuple", "a 3-tuple", "a 2-char str", "an int value", "a None value", "not iterable"],
)
def test_headers_of_the_wrong_shape_are_refused_when_the_response_is_made(headers):
    with pytest.raises(TypeError, match=r"a mapping or an iterable of \(name, value\) pairs of str or bytes"):
        Response(200, headers, b"")


def trailered(version: str = "1.1", method: str = "GET", takes: bool = True):
    response = Response(200, {"content-length": "5"}, b"hello", trailers={"x-sum": "1"})
    return serialize_head(response, method=method, http_version=version, keep_alive=True, takes_trailers=takes)


def test_trailers_to_a_client_that_takes_them_make_a_known_length_chunked():
    serialized = trailered()
    assert serialized.framing is Framing.CHUNKED and serialized.length is None
    assert b"Content-Length" not in serialized.data and b"Transfer-Encoding: chunked\r\n" in serialized.data


def test_trailers_leave_the_length_for_a_client_that_does_not_take_them_or_http10_or_head():
    assert trailered(takes=False).framing is Framing.LENGTH
    assert trailered(version="1.0").framing is Framing.LENGTH
    assert trailered(method="HEAD").framing is Framing.NONE


def test_the_last_chunk_carries_the_trailer_fields():
    assert last_chunk(trailer_fields({"X-Sum": " 1 ", "x-b": "2"})) == b"0\r\nx-sum: 1\r\nx-b: 2\r\n\r\n"
    assert last_chunk([]) == b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("trailer", "message"),
    [
        (("bad name", "1"), "illegal trailer name"),
        (("x-a", "1\r\nx-b: 2"), "illegal value"),
        (("Host", "example.com"), "only in the head"),
        (("transfer-encoding", "chunked"), "only in the head"),
    ],
)
def test_trailer_fields_refuse_what_cannot_be_a_trailer(trailer, message):
    with pytest.raises(ValueError, match=message):
        trailer_fields([trailer])


@pytest.mark.parametrize(
    ("value", "takes"),
    [(b"trailers", True), (b"deflate, Trailers;q=0.5", True), (b"deflate", False), (b"trailersx", False)],
)
def test_te_says_whether_the_client_takes_trailers(value, takes):
    assert takes_trailers([(b"host", b"x"), (b"te", value)]) is takes
