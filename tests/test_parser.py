"""The sans-io request parser, without sockets."""

from __future__ import annotations

import pytest
from conftest import GET

from trio_httpchannel import ProtocolError, Settings
from trio_httpchannel.http1.head import RequestHead
from trio_httpchannel.http1.parser import CLOSED, END, NEED_DATA, RequestParser


def events(parser: RequestParser) -> list[object]:
    out: list[object] = []
    while True:
        event = parser.next_event()
        out.append(event)
        if event is NEED_DATA or event is CLOSED:
            return out
        if event is END:
            parser.start_next_request()


def test_pipelined_requests_in_one_read_parse_one_after_another():
    parser = RequestParser(Settings())
    parser.receive_data(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    )
    parsed = events(parser)
    assert [e.target if isinstance(e, RequestHead) else e for e in parsed] == ["/a", END, "/b", b"abc", END, NEED_DATA]


def test_head_split_across_reads_waits_for_the_blank_line():
    parser = RequestParser(Settings())
    parser.receive_data(b"GET / HTTP/1.1\r\nHo")
    assert parser.next_event() is NEED_DATA
    assert parser.has_partial_request
    parser.receive_data(b"st: x\r\n\r\n")
    assert isinstance(parser.next_event(), RequestHead)


def test_end_of_input_between_requests_is_closed():
    parser = RequestParser(Settings())
    parser.receive_data(b"")
    assert parser.next_event() is CLOSED


def test_keep_alive_rules():
    def keep_alive(head: bytes) -> bool:
        parser = RequestParser(Settings())
        parser.receive_data(head)
        event = parser.next_event()
        assert isinstance(event, RequestHead)
        return event.keep_alive

    assert keep_alive(GET)
    assert not keep_alive(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert not keep_alive(b"GET / HTTP/1.0\r\n\r\n")
    assert keep_alive(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")


def test_head_length_counted_even_when_complete_in_one_read():
    parser = RequestParser(Settings(max_header_length=100, max_request_line=50))
    parser.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 100 + b"\r\n\r\n")
    with pytest.raises(ProtocolError) as raised:
        parser.next_event()
    assert raised.value.status == 431


def test_body_remaining_is_known_for_content_length_and_unknown_for_chunked():
    parser = RequestParser(Settings())
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n1234")
    parser.next_event()
    assert parser.next_event() == b"1234"
    assert parser.body_remaining == 6
    chunked = RequestParser(Settings())
    chunked.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunked.next_event()
    assert chunked.body_remaining is None


def test_safe_methods_are_marked_safe():
    parser = RequestParser(Settings())
    parser.receive_data(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nDELETE /x HTTP/1.1\r\nHost: x\r\n\r\n")
    first, _, second, _, _ = events(parser)
    assert isinstance(first, RequestHead) and first.safe
    assert isinstance(second, RequestHead) and not second.safe


def test_chunked_body_after_a_transfer_encoding_with_an_empty_element_is_parsed():
    parser = RequestParser(Settings())
    parser.receive_data(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    parsed = events(parser)
    assert [e.target if isinstance(e, RequestHead) else e for e in parsed] == ["/", b"hello", END, "/2", END, NEED_DATA]
