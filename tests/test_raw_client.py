"""The raw client's h11 check can fail: a test's server that answers with invalid HTTP/1.1 fails
the read, whatever the test asserts after it. Here the test itself plays the server and writes
the bytes of each mistake over a memory stream."""

from __future__ import annotations

import pytest
import trio.testing
from conftest import RawClient, ws_upgrade

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
HEAD = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
INVALID = "not valid HTTP/1.1"


async def answered(request: bytes, answer: bytes) -> RawClient:
    """A raw client that sent ``request`` and was answered ``answer``, then the end of the stream."""
    client, server = trio.testing.memory_stream_pair()
    raw = RawClient(client)
    await raw.send(request)
    await server.send_all(answer)
    await server.send_eof()
    return raw


async def test_valid_responses_of_each_framing_are_read_as_written() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    continued = b"HTTP/1.1 100 Continue\r\n\r\n" + b"HTTP/1.1 204 No Content\r\n\r\n"
    close_delimited = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"
    raw = await answered(GET + GET + HEAD + GET + GET, OK + chunked + head + continued + close_delimited)
    assert (await raw.read_response()).body == b"ok"
    assert (await raw.read_response()).body == b"ok"
    assert (await raw.read_response(head_request=True)).body == b""
    assert (await raw.read_response()).status == 204
    assert (await raw.read_response()).body == b"until the end"


async def test_after_a_101_the_bytes_are_another_protocols() -> None:
    raw = await answered(ws_upgrade(), b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi")
    assert (await raw.read_head()).status == 101
    assert await raw.read_to_eof() == b"\x81\x02hi"


async def test_a_body_on_a_response_to_head() -> None:
    raw = await answered(HEAD + GET, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + OK)
    await raw.read_response(head_request=True)
    with pytest.raises(AssertionError, match=INVALID):
        await raw.read_response()


async def test_a_body_longer_than_its_content_length() -> None:
    raw = await answered(GET, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokay")
    assert (await raw.read_response()).body == b"ok"
    with pytest.raises(AssertionError, match="begin no status line"):
        await raw.read_to_eof()


async def test_a_response_after_one_that_said_connection_close() -> None:
    raw = await answered(GET + GET, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok" + OK)
    await raw.read_response()
    with pytest.raises(AssertionError, match=INVALID):
        await raw.read_response()


async def test_a_response_after_the_request_asked_to_close() -> None:
    raw = await answered(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + GET, OK + OK)
    await raw.read_response()
    with pytest.raises(AssertionError, match=INVALID):
        await raw.read_response()


async def test_a_101_to_a_request_that_asked_for_no_upgrade() -> None:
    raw = await answered(GET, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    with pytest.raises(AssertionError, match=INVALID):
        await raw.read_head()


async def test_a_header_line_without_a_colon() -> None:
    raw = await answered(GET, b"HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 2\r\n\r\nok")
    with pytest.raises(AssertionError, match=INVALID):
        await raw.read_response()


async def test_content_length_with_transfer_encoding() -> None:
    raw = await answered(GET, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    with pytest.raises(AssertionError, match="both framings"):
        await raw.read_response()


async def test_content_length_on_a_204() -> None:
    raw = await answered(GET, b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(AssertionError, match="framing fields on a 204"):
        await raw.read_response()


async def test_a_chunked_answer_to_http_1_0() -> None:
    raw = await answered(b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    with pytest.raises(AssertionError, match="Transfer-Encoding in an answer to HTTP/1.0"):
        await raw.read_response()


async def test_a_cut_body_is_the_raw_clients_eof_not_invalid_http() -> None:
    raw = await answered(GET, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
    with pytest.raises(EOFError):
        await raw.read_response()
