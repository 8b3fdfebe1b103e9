"""HTTP/2 streams over h2's client: requests, responses, concurrency, flow control, fairness."""

from __future__ import annotations

import trio
from h2.errors import ErrorCodes

from trio_httpchannel import ClientDisconnected, Request, Response


async def echo(request: Request) -> Response:
    body = await request.read()
    text = (
        f"{request.method} {request.target} HTTP/{request.http_version} host={request.headers.get('host')} {len(body)}"
    )
    return Response(200, {"content-type": "text/plain"}, text.encode())


async def test_a_request_is_answered_on_its_stream_with_http_version_2(serve_h2):
    server = await serve_h2(echo)
    client = await server.connect()
    response = await client.get("/a?b=1")
    assert response.status == 200
    assert bytes(response.body) == b"GET /a?b=1 HTTP/2 host=example.com 0"
    assert response.header("content-length") == str(len(response.body))
    assert response.header("server") == "trio-httpchannel"


async def test_a_request_body_reaches_the_handler_whole(serve_h2):
    server = await serve_h2(echo)
    client = await server.connect()
    response = await client.get("/up", method="POST", body=b"x" * 300_000)
    assert bytes(response.body).endswith(b" 300000")


async def test_streams_of_one_connection_are_answered_concurrently(serve_h2):
    arrived = 0
    both = trio.Event()

    async def handler(request: Request) -> Response:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both.set()
        await both.wait()
        return Response(200, body=request.target.encode())

    server = await serve_h2(handler)
    client = await server.connect()
    first = await client.request("/1")
    second = await client.request("/2")
    assert bytes((await client.response(second)).body) == b"/2"
    assert bytes((await client.response(first)).body) == b"/1"


async def test_a_stream_over_the_limit_is_refused_alone(serve_h2):
    release = trio.Event()

    async def handler(request: Request) -> Response:
        await release.wait()
        return Response(200, body=b"done")

    server = await serve_h2(handler, h2_max_concurrent_streams=2)
    client = await server.connect()
    first = await client.request("/1")
    second = await client.request("/2")
    # h2's client keeps to the advertised limit once it knows it; forget it to go over.
    client.conn.remote_settings.max_concurrent_streams = 3
    third = await client.request("/3")
    refused = await client.response(third)
    assert refused.reset == ErrorCodes.REFUSED_STREAM
    release.set()
    assert bytes((await client.response(first)).body) == b"done"
    assert bytes((await client.response(second)).body) == b"done"
    assert client.terminated is None


async def test_a_large_response_ends_with_end_stream_on_its_last_data_frame(serve_h2):
    async def handler(request: Request) -> Response:
        return Response(200, body=b"z" * 1_000_000)

    server = await serve_h2(handler)
    client = await server.connect()
    response = await client.get("/")
    assert len(response.body) == 1_000_000
    assert response.end_on_data


async def test_a_streamed_response_ends_with_end_stream(serve_h2):
    async def chunks():
        for index in range(50):
            yield b"%05d" % index

    async def handler(request: Request) -> Response:
        return Response(200, body=chunks())

    server = await serve_h2(handler)
    client = await server.connect()
    response = await client.get("/")
    assert bytes(response.body) == b"".join(b"%05d" % i for i in range(50))
    assert response.ended
    assert response.header("content-length") is None


async def test_two_large_responses_share_the_window_turn_by_turn(serve_h2):
    async def handler(request: Request) -> Response:
        return Response(200, body=request.target.encode() * 200_000)

    server = await serve_h2(handler)
    client = await server.connect()
    first = await client.request("/a")
    second = await client.request("/b")
    order = []
    while not (client.responses[first].ended and client.responses[second].ended):
        for event in await client.receive():
            if type(event).__name__ == "DataReceived":
                order.append(event.stream_id)
    halfway = order[: len(order) // 2]
    assert first in halfway and second in halfway


async def test_a_handler_that_does_not_read_stalls_only_its_own_stream(serve_h2):
    never = trio.Event()

    async def handler(request: Request) -> Response:
        if request.target == "/stuck":
            await never.wait()
        body = await request.read()
        return Response(200, body=b"%d" % len(body))

    server = await serve_h2(handler)
    client = await server.connect()
    stuck = await client.request("/stuck", method="POST", end=False)
    await client.push(stuck, b"s" * 65535)
    other = await client.request("/other", method="POST", body=b"o" * 200_000)
    response = await client.response(other)
    assert bytes(response.body) == b"200000"
    assert client.conn.local_flow_control_window(stuck) == 0


async def test_a_slow_reader_gets_its_window_back_only_as_it_reads(serve_h2):
    start = trio.Event()
    taken = trio.Event()
    go_on = trio.Event()

    async def handler(request: Request) -> Response:
        await start.wait()
        total = 0
        async for chunk in request.body:
            total += len(chunk)
            taken.set()
            await go_on.wait()
        return Response(200, body=b"%d" % total)

    server = await serve_h2(handler)
    client = await server.connect()
    stream_id = await client.request("/", method="POST", end=False)
    await client.push(stream_id, b"a" * 65535)
    await client.ping()
    assert client.conn.local_flow_control_window(stream_id) == 0
    start.set()
    await taken.wait()
    while client.conn.local_flow_control_window(stream_id) == 0:
        await client.receive()
    await client.ping()
    # The window reopened by exactly the one frame the handler took (16384 bytes), no more.
    assert client.conn.local_flow_control_window(stream_id) == 16384
    go_on.set()
    client.conn.end_stream(stream_id)
    await client.flush()
    assert bytes((await client.response(stream_id)).body) == b"65535"


async def test_a_response_given_before_the_body_is_read_resets_the_rest_with_no_error(serve_h2):
    async def handler(request: Request) -> Response:
        return Response(413, body=b"no thanks")

    server = await serve_h2(handler)
    client = await server.connect()
    stream_id = await client.request("/", method="POST", end=False)
    client.conn.send_data(stream_id, b"x" * 1000)
    await client.flush()
    response = await client.response(stream_id)
    assert response.status == 413
    while response.reset is None and not client.eof:
        await client.receive()
    assert response.reset == ErrorCodes.NO_ERROR
    assert (await client.get("/again")).status == 413


async def test_a_body_read_after_the_response_is_sent_raises_rather_than_looking_complete(serve_h2):
    outcome: list[object] = []
    done = trio.Event()

    async def read_late(request: Request) -> None:
        try:
            outcome.append(len(await request.read()))
        except trio.ClosedResourceError as error:
            outcome.append(error)
        done.set()

    async def handler(request: Request) -> Response:
        assert request.nursery is not None
        request.nursery.start_soon(read_late, request)
        return Response(200, body=b"answered first")

    server = await serve_h2(handler)
    client = await server.connect()
    stream_id = await client.request("/", method="POST", end=False)
    await client.push(stream_id, b"x" * 1000)
    assert (await client.response(stream_id)).status == 200
    with trio.fail_after(10):
        await done.wait()
    assert len(outcome) == 1 and isinstance(outcome[0], trio.ClosedResourceError)


async def test_a_handler_reading_a_body_its_client_reset_never_sees_it_complete(serve_h2):
    reading = trio.Event()
    outcome: list[object] = []

    async def handler(request: Request) -> Response:
        if request.target == "/after":
            return Response(200)
        try:
            async for chunk in request.body:
                outcome.append(len(chunk))
                reading.set()
        except (trio.Cancelled, ClientDisconnected):
            outcome.append("stopped")
            raise
        outcome.append("complete")
        return Response(200)

    server = await serve_h2(handler)
    client = await server.connect()
    stream_id = await client.request("/", method="POST", end=False)
    await client.push(stream_id, b"x" * 1000)
    await reading.wait()
    client.conn.reset_stream(stream_id, ErrorCodes.CANCEL)
    await client.flush()
    assert (await client.get("/after")).status == 200
    assert outcome == [1000, "stopped"]


async def test_a_body_ended_and_reset_in_one_read_is_never_taken_as_complete(serve_h2):
    waiting = trio.Event()
    outcome: list[object] = []

    async def handler(request: Request) -> Response:
        if request.target == "/after":
            return Response(200)
        waiting.set()
        try:
            outcome.append(await request.read())
        except (trio.Cancelled, ClientDisconnected):
            outcome.append("stopped")
            raise
        return Response(200)

    server = await serve_h2(handler)
    client = await server.connect()
    stream_id = await client.request("/", method="POST", end=False)
    await waiting.wait()
    client.conn.send_data(stream_id, b"x", end_stream=True)
    client.conn.reset_stream(stream_id, ErrorCodes.CANCEL)
    await client.flush()
    assert (await client.get("/after")).status == 200
    assert outcome == ["stopped"]


async def test_a_head_request_gets_the_length_and_no_body(serve_h2):
    server = await serve_h2(echo)
    client = await server.connect()
    response = await client.get("/", method="HEAD")
    assert response.status == 200
    assert response.header("content-length") is not None
    assert response.body == b""


async def test_a_failing_handler_gets_500_and_the_connection_goes_on(serve_h2, caplog):
    async def handler(request: Request) -> Response:
        if request.target == "/fail":
            raise RuntimeError("boom")
        return Response(200, body=b"fine")

    server = await serve_h2(handler)
    client = await server.connect()
    assert (await client.get("/fail")).status == 500
    assert (await client.get("/ok")).status == 200
    assert [r.message for r in caplog.records if r.levelname == "ERROR"][0].startswith("the handler failed")


async def test_a_streamed_body_longer_than_its_content_length_resets_its_stream(serve_h2, caplog):
    async def chunks():
        yield b"12345"
        yield b"678"

    async def handler(request: Request) -> Response:
        if request.target == "/long":
            return Response(200, {"content-length": "5"}, chunks())
        return Response(200, body=b"fine")

    server = await serve_h2(handler)
    client = await server.connect()
    assert (await client.get("/long")).reset == ErrorCodes.INTERNAL_ERROR
    assert (await client.get("/ok")).status == 200


async def test_connection_specific_response_fields_are_dropped(serve_h2):
    async def handler(request: Request) -> Response:
        return Response(200, [("Connection", "close"), ("Keep-Alive", "5"), ("X-Kept", "yes")], b"ok")

    server = await serve_h2(handler)
    client = await server.connect()
    response = await client.get("/")
    names = [name for name, _ in response.headers]
    assert b"connection" not in names and b"keep-alive" not in names
    assert response.header("x-kept") == "yes"
    assert (await client.get("/again")).status == 200
