"""A connection's shape: with work it holds a nursery, a reader task and the handlers' tasks; idle
for ``SETTLE_AFTER`` with nothing running it settles to its own task alone, and wakes up again
for the next request, which is served as any other. All under the MockClock."""

from __future__ import annotations

import trio
import trio.testing
from _leaks import live_tasks
from _raw_client import RawClient
from conftest import GET, echo

from trio_httpchannel import HTTPChannel, Request, Response
from trio_httpchannel.http1.reader import SETTLE_AFTER, SETTLE_AFTER_LIMIT

POST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"


async def test_an_idle_keep_alive_connection_settles_to_its_own_task(serve, autojump_clock):
    connect = await serve(echo)
    before = live_tasks()
    client = await connect()
    await client.send(GET)
    await client.read_response()
    await trio.testing.wait_all_tasks_blocked()
    assert live_tasks() == before + 2, "the connection's task and its reader, until it settles"
    await trio.sleep(2 * SETTLE_AFTER)
    assert live_tasks() == before + 1


async def test_a_settled_connection_serves_the_next_requests(serve, autojump_clock):
    client = await (await serve(echo))()
    await client.send(GET)
    await client.read_response()
    await trio.sleep(1)
    await client.send(POST + GET)
    assert (await client.read_response()).body == b"hello"
    assert (await client.read_response()).status == 200
    await trio.sleep(1)
    await client.send(GET)
    assert (await client.read_response()).status == 200


async def test_a_connection_settles_only_once_every_task_in_its_nursery_is_done(serve, autojump_clock):
    async def background(request: Request) -> Response:
        assert request.nursery is not None
        request.nursery.start_soon(trio.sleep, 5)
        return Response(200, [], b"started")

    connect = await serve(background)
    before = live_tasks()
    client = await connect()
    await client.send(GET)
    assert (await client.read_response()).body == b"started"
    await trio.sleep(1)
    assert live_tasks() == before + 3, "the connection, its reader and the task the handler started"
    await trio.sleep(5)
    assert live_tasks() == before + 1
    await client.send(GET)
    assert (await client.read_response()).body == b"started"


async def test_a_connection_woken_from_settling_waits_twice_as_long_to_settle_again(serve, autojump_clock):
    connect = await serve(echo)
    before = live_tasks()
    client = await connect()
    waits = [SETTLE_AFTER]
    while waits[-1] < SETTLE_AFTER_LIMIT:
        waits.append(min(2 * waits[-1], SETTLE_AFTER_LIMIT))
    for settle_after in [*waits, SETTLE_AFTER_LIMIT]:  # and no longer once at the limit
        await client.send(GET)
        await client.read_response()
        await trio.sleep(settle_after * 0.9)
        assert live_tasks() == before + 2, "not settled yet"
        await trio.sleep(settle_after * 0.2)
        assert live_tasks() == before + 1, "settled"


async def test_a_request_split_across_the_settling_is_timed_from_its_first_byte(serve, autojump_clock):
    client = await (await serve(echo, header_timeout=5, timeout=100))()
    await client.send(GET)
    await client.read_response()
    await trio.sleep(1)
    start = trio.current_time()
    await client.send(GET[:5])
    response = await client.read_response()
    assert response.status == 408
    assert 5 <= trio.current_time() - start < 6


async def test_a_settled_connection_closes_at_once_when_the_channel_shuts_down(nursery, autojump_clock):
    channel = HTTPChannel(echo)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(channel, server_stream)

    client = RawClient(client_stream)
    await client.send(GET)
    await client.read_response()
    await trio.sleep(1)
    channel.shutdown()
    start = trio.current_time()
    assert await client.read_to_eof() == b""
    assert trio.current_time() == start
    await trio.testing.wait_all_tasks_blocked()
    assert channel.connection_count == 0


async def test_a_client_leaving_a_settled_connection_ends_it(serve, autojump_clock):
    connect = await serve(echo)
    before = live_tasks()
    client = await connect()
    await client.send(GET)
    await client.read_response()
    await trio.sleep(1)
    await client.send_eof()
    assert await client.read_to_eof() == b""
    await trio.testing.wait_all_tasks_blocked()
    assert live_tasks() == before


class _LateReads(trio.abc.Stream):
    """The server's side of a memory stream where the scheduler runs late after every read that
    brings bytes: a second of MockClock time passes before the reader acts on them, so the
    deadline it was reading under (to settle) has passed by then."""

    def __init__(self, stream: trio.abc.Stream, clock: trio.testing.MockClock) -> None:
        self.stream = stream
        self.clock = clock

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.stream.receive_some(max_bytes)
        if data:
            self.clock.jump(1)
            await trio.lowlevel.cancel_shielded_checkpoint()
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()


async def test_a_request_read_as_the_wait_for_it_would_settle_is_served(nursery, autojump_clock):
    """Bytes read just as the wait for the next request reaches SETTLE_AFTER belong to a request
    sent in time: it is served whole, body and all, not cancelled by the settling as it is
    dispatched (which answered its body 408 and closed the connection)."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(HTTPChannel(echo), _LateReads(server_stream, autojump_clock))
    client = RawClient(client_stream)
    for _ in range(3):
        await client.send(POST)
        response = await client.read_response()
        assert (response.status, response.body) == (200, b"hello")
