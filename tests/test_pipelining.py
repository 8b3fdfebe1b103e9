"""Pipelining: concurrent handlers for safe methods, responses in request order, the bound."""

from __future__ import annotations

import logging

import trio
import trio.testing
from conftest import get

from trio_httpchannel import HTTPChannel, Request, Response


async def echo_path(request: Request) -> Response:
    return Response(200, [("content-type", "text/plain")], request.path.encode())


async def test_pipelined_requests_answered_in_order(serve):
    connect = await serve(echo_path)
    client = await connect()
    await client.send(b"".join(get(f"/{n}") for n in range(10)))
    bodies = [(await client.read_response()).body for _ in range(10)]
    assert bodies == [f"/{n}".encode() for n in range(10)]


async def test_later_response_ready_first_waits_for_earlier(serve, autojump_clock):
    async def slow_first(request: Request) -> Response:
        if request.path == "/slow":
            await trio.sleep(5)
        return Response(200, [], request.path.encode())

    connect = await serve(slow_first)
    client = await connect()
    await client.send(get("/slow") + get("/fast"))
    assert (await client.read_response()).body == b"/slow"
    assert (await client.read_response()).body == b"/fast"


async def test_pipelined_gets_run_concurrently_up_to_max_pipeline(serve, autojump_clock):
    async def sleepy(request: Request) -> Response:
        await trio.sleep(1)
        return Response(200, [], b"ok")

    connect = await serve(sleepy, max_pipeline=8)
    client = await connect()
    start = trio.current_time()
    await client.send(get("/") * 8)
    for _ in range(8):
        assert (await client.read_response()).status == 200
    assert trio.current_time() - start < 1.5


async def test_third_request_not_started_until_one_answered_at_max_pipeline_2(serve, autojump_clock):
    started: list[tuple[str, float]] = []

    async def sleepy(request: Request) -> Response:
        started.append((request.path, trio.current_time()))
        await trio.sleep(1)
        return Response(200, [], b"ok")

    connect = await serve(sleepy, max_pipeline=2)
    client = await connect()
    start = trio.current_time()
    await client.send(get("/1") + get("/2") + get("/3"))
    for _ in range(3):
        await client.read_response()
    assert sorted(path for path, _ in started[:2]) == ["/1", "/2"]
    assert started[2][0] == "/3"
    assert started[1][1] - start < 0.5
    assert started[2][1] - start >= 1


async def test_post_in_pipeline_waits_for_earlier_and_blocks_later(serve, autojump_clock):
    log: list[str] = []

    async def recorder(request: Request) -> Response:
        log.append(f"start {request.method} {request.path}")
        await request.read()
        await trio.sleep(1)
        log.append(f"end {request.method} {request.path}")
        return Response(200, [], b"ok")

    connect = await serve(recorder, max_pipeline=8)
    client = await connect()
    post = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
    await client.send(get("/a") + post + get("/b"))
    for _ in range(3):
        await client.read_response()
    assert log == ["start GET /a", "end GET /a", "start POST /p", "end POST /p", "start GET /b", "end GET /b"]


async def test_reader_stops_reading_at_the_bound(serve_memory, autojump_clock):
    """At max_pipeline requests in progress, bytes stay unread: TCP pushes back on the client."""
    release = trio.Event()
    seen: list[str] = []

    async def blocked(request: Request) -> Response:
        seen.append(request.path)
        await release.wait()
        return Response(200, [], b"ok")

    connect = await serve_memory(blocked, max_pipeline=2)
    client = await connect()
    await client.send(get("/1") + get("/2") + get("/3") + get("/4"))
    await trio.sleep(10)
    assert sorted(seen) == ["/1", "/2"]
    release.set()
    for _ in range(4):
        await client.read_response()
    assert sorted(seen) == ["/1", "/2", "/3", "/4"]


async def test_client_send_blocks_while_pipeline_is_full(serve_tcp, autojump_clock):
    """Over a real socket: with every slot taken, the server stops reading and the client's
    writes stall once the kernel buffers fill, instead of the server buffering requests."""
    release = trio.Event()

    async def blocked(request: Request) -> Response:
        await release.wait()
        return Response(200, [], b"ok")

    connect = await serve_tcp(blocked, max_pipeline=2)
    client = await connect()
    flood = get("/") * (32 * 1024 * 1024 // len(get("/")))
    with trio.move_on_after(30) as scope:
        await client.send(flood)
    assert scope.cancelled_caught
    release.set()


class CountingStream(trio.abc.HalfCloseableStream):
    """A memory stream that counts the writes made to it."""

    def __init__(self, inner: trio.StapledStream) -> None:
        self.inner = inner
        self.writes = 0

    async def send_all(self, data: bytes) -> None:
        self.writes += 1
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_ready_pipelined_responses_go_out_in_one_write(autojump_clock):
    client, server = trio.testing.memory_stream_pair()
    counting = CountingStream(server)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(HTTPChannel(echo_path, max_pipeline=8), counting)
        await client.send_all(get("/x") * 8)
        await client.send_eof()
        received = b""
        while data := await client.receive_some():
            received += data
    assert received.count(b"HTTP/1.1 200 OK") == 8
    assert counting.writes < 8


async def test_response_to_a_request_that_came_while_the_last_one_was_being_written_waits(serve_lockstep, caplog):
    """Over a lock-step stream the first response's write waits for the client, which sends
    its next request first: that response is written after the first, not at the same time
    (trio would refuse the second write; on a socket the bytes would interleave)."""
    client = await (await serve_lockstep(echo_path))()
    await client.send(get("/first"))
    await trio.testing.wait_all_tasks_blocked()
    await client.send(get("/second"))
    with trio.fail_after(10):
        bodies = [(await client.read_response()).body for _ in range(2)]
    assert bodies == [b"/first", b"/second"]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
