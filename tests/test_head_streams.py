"""HEAD to a streaming endpoint: the head goes out, the body never does, so the stream is
ended as soon as the head is written (an ASGI app is cancelled, a native generator closed) and
a request pipelined behind the HEAD is answered without waiting for it. Over a real socket,
each wait guarded by ``trio.fail_after`` under the MockClock's autojump."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio
from conftest import GUARD, EventStream, connect_to

from trio_httpchannel import Request, Response


async def test_head_to_an_event_stream_ends_the_stream_and_serves_the_next_request(serve_asgi, autojump_clock):
    events = EventStream()
    url = await serve_asgi(events.app())
    client = await connect_to(url)
    await client.send(b"HEAD /events HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
    with trio.fail_after(GUARD):
        head = await client.read_response(head_request=True)
        plain = await client.read_response()
        await events.ended.wait()
    assert (head.status, head.header("content-type")) == (200, "text/event-stream; charset=utf-8")
    assert plain.body == b"plain"


async def test_get_to_the_same_event_stream_still_streams(serve_asgi, autojump_clock):
    events = EventStream()
    url = await serve_asgi(events.app())
    client = await connect_to(url)
    await client.send(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    with trio.fail_after(GUARD):
        head = await client.read_head()
        first = await client.read_until(b"\n\n")
    assert head.header("transfer-encoding") == "chunked" and first.endswith(b"data: first\n\n")
    assert not events.ended.is_set()


async def test_head_to_a_native_stream_closes_it_and_serves_the_next_request(serve_tcp, autojump_clock):
    streams: list[AsyncIterator[bytes]] = []

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            yield b"data: first\n\n"
            await trio.sleep_forever()

        if request.path == "/plain":
            return Response(200, [], b"plain")
        streams.append(stream())
        return Response(200, [("content-type", "text/event-stream")], streams[-1])

    client = await (await serve_tcp(events))()
    await client.send(b"HEAD /events HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
    with trio.fail_after(GUARD):
        head = await client.read_response(head_request=True)
        plain = await client.read_response()
    assert head.header("content-type") == "text/event-stream" and plain.body == b"plain"
    assert streams[0].ag_frame is None  # type: ignore[attr-defined]
