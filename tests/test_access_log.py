"""The ``on_response`` hook (an access log): exactly one record for every response that started
to go out, with the client's address and, where the head was parsed, the request; a response
cut short says so. Over a real socket, with the bad bytes written by the test."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
from _h2 import RawH2
from conftest import GUARD, RawClient, connect_tcp, echo

from trio_httpchannel import HTTPChannel, Request, Response, ResponseRecord
from trio_httpchannel.asgi import ASGIHandler

GET = b"GET /page?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"


class Log:
    def __init__(self) -> None:
        self.records: list[ResponseRecord] = []
        self.changed = trio.Event()

    def __call__(self, record: ResponseRecord) -> None:
        self.records.append(record)
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, count: int) -> list[ResponseRecord]:
        with trio.fail_after(GUARD):
            while len(self.records) < count:
                await self.changed.wait()
        return self.records


@pytest.fixture
def logged(nursery: trio.Nursery) -> Callable[..., Awaitable[tuple[Log, Callable[[], Awaitable[RawClient]]]]]:
    """``log, connect = await logged(handler, **settings)``: a loopback server whose access log
    is ``log.records``."""

    async def start(handler: Any, **settings: Any) -> tuple[Log, Callable[[], Awaitable[RawClient]]]:
        log = Log()
        channel = HTTPChannel(handler, on_response=log, **settings)
        listeners = await nursery.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]

        async def connect() -> RawClient:
            return await connect_tcp(port)

        return log, connect

    return start


async def page(request: Request) -> Response:
    return Response(200, [], b"a page")


def client_port(client: RawClient) -> tuple[str, int]:
    return client.stream.socket.getsockname()[:2]  # type: ignore[attr-defined, no-any-return]


async def test_each_pipelined_response_gets_one_complete_record(logged):
    log, connect = await logged(page)
    client = await connect()
    await client.send(GET * 3)
    for _ in range(3):
        await client.read_response()
    records = await log.wait_for(3)
    assert len(records) == 3
    for record in records:
        assert (record.status, record.complete) == (200, True)
        assert record.client == client_port(client)
        assert record.request is not None and record.request.target == "/page?x=1"


async def test_sent_counts_the_bytes_the_client_received(logged):
    log, connect = await logged(page)
    client = await connect()
    await client.send(GET * 2 + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    received = await client.read_to_eof()
    records = await log.wait_for(3)
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert sum(record.sent for record in records) == len(received)


async def test_a_head_the_parser_refuses_is_logged_with_the_client_address(logged):
    log, connect = await logged(page)
    client = await connect()
    await client.send(b"GARBAGE\r\n\r\n")
    assert (await client.read_response()).status == 400
    (record,) = await log.wait_for(1)
    assert (record.status, record.request, record.complete) == (400, None, True)
    assert record.client == client_port(client)


async def test_a_413_for_a_content_length_over_the_limit_is_logged_with_its_request_line(logged):
    log, connect = await logged(echo, max_body_size=4)
    client = await connect()
    await client.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert (await client.read_response()).status == 413
    (record,) = await log.wait_for(1)
    assert record.status == 413 and record.complete
    assert record.request is not None and (record.request.method, record.request.target) == ("POST", "/upload")


async def test_a_413_for_a_chunked_body_over_the_limit_is_logged(logged):
    log, connect = await logged(echo, max_body_size=4)
    client = await connect()
    await client.send(
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n"
    )
    assert (await client.read_response()).status == 413
    (record,) = await log.wait_for(1)
    assert (record.status, record.complete) == (413, True)
    assert record.request is not None and record.request.target == "/upload"


async def endless(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 65536

    return Response(200, [], chunks())


async def test_a_stream_cut_by_the_client_leaving_is_logged_cut_short(logged):
    log, connect = await logged(endless)
    client = await connect()
    await client.send(GET)
    await client.read_head()
    await client.read_exactly(100_000)
    await client.aclose()
    (record,) = await log.wait_for(1)
    assert (record.status, record.complete) == (200, False)
    assert record.sent > 100_000


async def test_an_asgi_stream_cut_by_the_client_leaving_is_logged_cut_short(logged, autojump_clock):
    never = trio.Event()

    async def events(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        await never.wait()

    log, connect = await logged(ASGIHandler(events))
    client = await connect()
    await client.send(GET)
    await client.read_head()
    await client.read_until(b"data: one\n\n")
    await client.aclose()
    (record,) = await log.wait_for(1)
    assert (record.status, record.complete) == (200, False)


async def test_a_response_never_read_within_send_timeout_is_logged_cut_short(logged, autojump_clock):
    log, connect = await logged(endless, send_timeout=5)
    client = await connect()
    await client.send(GET)
    (record,) = await log.wait_for(1)
    assert (record.status, record.complete) == (200, False)


async def test_a_failing_hook_is_logged_and_the_connection_goes_on(nursery, caplog):
    def broken(record: ResponseRecord) -> None:
        raise ValueError("hook broke")

    channel = HTTPChannel(page, on_response=broken)
    listeners = await nursery.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
    client = await connect_tcp(listeners[0].socket.getsockname()[1])
    await client.send(GET * 2)
    assert [(await client.read_response()).body for _ in range(2)] == [b"a page", b"a page"]
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 2 and "on_response hook failed" in errors[0].getMessage()


async def test_log_messages_name_the_peer_as_host_and_port(logged, caplog):
    caplog.set_level(logging.DEBUG, logger="trio_httpchannel")
    _, connect = await logged(page)
    client = await connect()
    await client.send(b"GARBAGE\r\n\r\n")
    await client.read_response()
    host, port = client_port(client)
    assert any(f"from {host}:{port}:" in record.getMessage() for record in caplog.records)


async def test_sent_counts_the_frames_of_an_http2_response(logged):
    """Over HTTP/2 ``sent`` counts the response's HEADERS and DATA frames, as over HTTP/1.1 it
    counts the head and the body."""
    log, connect = await logged(page)
    client = RawH2((await connect()).stream)
    await client.handshake()
    await client.send_frames(
        client.headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/")])
    )
    stream_bytes = 0
    while True:
        frame = await client.frame()
        assert frame is not None, "the server closed before the response ended"
        if frame.stream_id == 1:
            stream_bytes += 9 + len(frame.serialize_body())
            if "END_STREAM" in frame.flags:
                break
    [record] = await log.wait_for(1)
    assert record.request is not None and record.request.http_version == "2"
    assert record.sent == stream_bytes
