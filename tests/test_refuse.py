"""``HTTPChannel.refuse``: a connection answered without serving a request on it (the server at
its connection limit), over a real loopback socket, each response checked by h11 as a client.
With HTTP/2 on (the default) the client's first bytes say which protocol to answer in (see
``test_refuse_h2c.py`` for the HTTP/2 clients); these clients speak HTTP/1.1."""

from __future__ import annotations

import functools
from typing import Any

import h11
import trio
from conftest import GET

from trio_httpchannel import HTTPChannel, Request, Response, ResponseRecord


async def hello(request: Request) -> Response:
    return Response(200, [], b"hello")


class Refuser:
    """Refuses every connection with 503, and notes how long each refusal took and its record."""

    def __init__(self, linger: float | None, **settings: Any) -> None:
        self.records: list[ResponseRecord] = []
        self.channel = HTTPChannel(hello, on_response=self.records.append, **settings)
        self.linger = linger
        self.took_send, self.took_receive = trio.open_memory_channel[float](10)

    async def __call__(self, stream: trio.SocketStream) -> None:
        start = trio.current_time()
        await self.channel.refuse(stream, 503, "busy", headers=[(b"retry-after", b"1")], linger=self.linger)
        await self.took_send.send(trio.current_time() - start)


async def connect(nursery: trio.Nursery, refuser: Refuser, request: bytes = GET) -> trio.SocketStream:
    """A connection to ``refuser``, which has sent ``request``."""
    listeners = await nursery.start(functools.partial(trio.serve_tcp, refuser, 0, host="127.0.0.1"))
    stream = await trio.open_tcp_stream("127.0.0.1", listeners[0].socket.getsockname()[1])
    if request:
        await stream.send_all(request)
    return stream


async def read_to_eof(stream: trio.SocketStream) -> bytes:
    data = bytearray()
    while chunk := await stream.receive_some(65536):
        data += chunk
    return bytes(data)


def parse(data: bytes) -> tuple[h11.Response, bytes]:
    """The response in ``data``, read by h11 as the client of a GET, and its body."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    client.receive_data(b"")
    response = client.next_event()
    assert isinstance(response, h11.Response)
    body = b""
    while isinstance(event := client.next_event(), h11.Data):
        body += event.data
    assert isinstance(event, h11.EndOfMessage)
    return response, body


async def test_a_refused_connection_gets_the_status_its_headers_and_close_then_eof(nursery):
    stream = await connect(nursery, Refuser(2.0))
    response, body = parse(await read_to_eof(stream))
    headers = dict(response.headers)
    assert response.status_code == 503
    assert headers[b"connection"] == b"close" and headers[b"retry-after"] == b"1"
    assert body == b"503 Service Unavailable: busy\n"


async def test_a_client_uploading_before_it_reads_still_gets_the_whole_refusal(nursery):
    """The lingering close: the server reads and discards what the client sends, so that
    closing does not make the kernel reset the answer away."""
    stream = await connect(nursery, Refuser(2.0), b"")
    await stream.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 262144\r\n\r\n" + b"x" * 262144)
    await stream.send_eof()
    response, _ = parse(await read_to_eof(stream))
    assert response.status_code == 503


async def test_a_client_that_never_closes_is_closed_after_linger_seconds(nursery, autojump_clock):
    refuser = Refuser(5.0)
    stream = await connect(nursery, refuser)
    response, _ = parse(await read_to_eof(stream))
    assert response.status_code == 503
    assert await refuser.took_receive.receive() == 5.0
    await stream.aclose()


async def test_refusing_without_a_linger_takes_linger_timeout(nursery, autojump_clock):
    refuser = Refuser(None, linger_timeout=7.0)
    stream = await connect(nursery, refuser)
    assert await refuser.took_receive.receive() == 7.0
    await stream.aclose()


async def test_a_client_that_closes_ends_the_refusal_at_once(nursery, autojump_clock):
    refuser = Refuser(5.0)
    stream = await connect(nursery, refuser)
    await read_to_eof(stream)
    await stream.aclose()
    assert await refuser.took_receive.receive() == 0.0


async def test_a_client_that_says_nothing_within_linger_is_closed_unanswered_and_recorded(nursery, autojump_clock):
    """It may speak either protocol: nothing can be answered until it says which."""
    refuser = Refuser(5.0)
    stream = await connect(nursery, refuser, b"")
    assert await read_to_eof(stream) == b""
    assert await refuser.took_receive.receive() == 5.0
    (record,) = refuser.records
    assert (record.status, record.request, record.sent, record.complete) == (503, None, 0, False)
    await stream.aclose()


async def test_a_client_stalling_inside_the_http2_preface_is_closed_unanswered_at_linger(nursery, autojump_clock):
    refuser = Refuser(5.0)
    stream = await connect(nursery, refuser, b"PRI * HTTP/2.0\r\n")
    assert await read_to_eof(stream) == b""
    assert await refuser.took_receive.receive() == 5.0
    assert [record.sent for record in refuser.records] == [0]
    await stream.aclose()


async def test_without_http2_a_client_is_answered_at_once_before_it_says_anything(nursery):
    stream = await connect(nursery, Refuser(2.0, h2=False), b"")
    response, _ = parse(await read_to_eof(stream))
    assert response.status_code == 503
