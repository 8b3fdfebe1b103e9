"""``HTTPChannel.refuse``: a connection answered without reading a request from it (the server at
its connection limit), over a real loopback socket, each response checked by h11 as a client."""

from __future__ import annotations

import functools

import h11
import trio

from trio_httpchannel import HTTPChannel, Request, Response


async def hello(request: Request) -> Response:
    return Response(200, [], b"hello")


class Refuser:
    """Refuses every connection with 503, and notes how long each refusal took."""

    def __init__(self, linger: float | None, **settings: float) -> None:
        self.channel = HTTPChannel(hello, **settings)
        self.linger = linger
        self.took_send, self.took_receive = trio.open_memory_channel[float](10)

    async def __call__(self, stream: trio.SocketStream) -> None:
        start = trio.current_time()
        await self.channel.refuse(stream, 503, "busy", headers=[(b"retry-after", b"1")], linger=self.linger)
        await self.took_send.send(trio.current_time() - start)


async def connect(nursery: trio.Nursery, refuser: Refuser) -> trio.SocketStream:
    listeners = await nursery.start(functools.partial(trio.serve_tcp, refuser, 0, host="127.0.0.1"))
    return await trio.open_tcp_stream("127.0.0.1", listeners[0].socket.getsockname()[1])


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
    stream = await connect(nursery, Refuser(2.0))
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
