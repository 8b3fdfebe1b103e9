"""The ASGI adapter: the http scope, the message rules of the ASGI spec, and what the client sees
when an app breaks them. Each rule is pinned with a tiny raw ASGI app."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from conftest import get, post

from trio_httpchannel.asgi import ASGIHandler

Message = dict[str, Any]


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def recording(scopes: list[Any]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await hello(scope, receive, send)

    return app


async def test_scope_has_the_http_keys_of_the_spec(serve_tcp):
    scopes: list[Any] = []
    connect = await serve_tcp(ASGIHandler(recording(scopes)))
    client = await connect()
    await client.send(get("/caf%C3%A9%20x?q=1&r=%20", "X-Twice: 1", "x-twice: 2"))
    await client.read_response()
    (scope,) = scopes
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (scope["http_version"], scope["method"], scope["scheme"]) == ("1.1", "GET", "http")
    assert scope["path"] == "/café x"
    assert scope["raw_path"] == b"/caf%C3%A9%20x"
    assert scope["query_string"] == b"q=1&r=%20"
    assert scope["root_path"] == ""
    assert scope["headers"] == [(b"host", b"example.com"), (b"x-twice", b"1"), (b"x-twice", b"2")]
    assert scope["client"][0] == "127.0.0.1" and scope["server"][0] == "127.0.0.1"
    assert "state" not in scope


async def test_client_and_server_are_none_without_a_socket(serve_memory):
    scopes: list[Any] = []
    connect = await serve_memory(ASGIHandler(recording(scopes)))
    client = await connect()
    await client.send(get())
    await client.read_response()
    assert scopes[0]["client"] is None and scopes[0]["server"] is None


async def test_root_path_is_in_the_scope_and_in_front_of_the_path(serve):
    scopes: list[Any] = []
    connect = await serve(ASGIHandler(recording(scopes), root_path="/api"))
    client = await connect()
    await client.send(get("/items"))
    await client.read_response()
    assert (scopes[0]["root_path"], scopes[0]["path"], scopes[0]["raw_path"]) == ("/api", "/api/items", b"/api/items")


async def test_each_request_gets_a_shallow_copy_of_the_lifespan_state(serve):
    state = {"db": object()}
    scopes: list[Any] = []
    connect = await serve(ASGIHandler(recording(scopes), state=state))
    client = await connect()
    await client.send(get() + get())
    await client.read_response()
    await client.read_response()
    first, second = scopes
    assert first["state"] == state and first["state"] is not state and first["state"] is not second["state"]
    assert first["state"]["db"] is state["db"]


async def test_single_body_response_is_sent_with_content_length(serve):
    connect = await serve(ASGIHandler(hello))
    client = await connect()
    await client.send(get())
    response = await client.read_response()
    assert (response.status, response.body) == (200, b"hello")
    assert response.header("content-length") == "5" and response.header("transfer-encoding") is None


async def streaming(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"one ", b"", b"two ", b"three"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_streamed_response_is_sent_chunked(serve):
    connect = await serve(ASGIHandler(streaming))
    client = await connect()
    await client.send(get() + get())
    for _ in range(2):
        response = await client.read_response()
        assert response.header("transfer-encoding") == "chunked" and response.body == b"one two three"


async def test_streamed_response_with_content_length_keeps_it(serve):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})

    connect = await serve(ASGIHandler(app))
    client = await connect()
    await client.send(get())
    response = await client.read_response()
    assert response.header("content-length") == "6" and response.body == b"abcdef"


async def test_app_sends_only_as_fast_as_the_client_reads(serve_lockstep):
    sent = 0

    async def endless(scope: Any, receive: Any, send: Any) -> None:
        nonlocal sent
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": b"x" * 1000, "more_body": True})
            sent += 1

    connect = await serve_lockstep(ASGIHandler(endless))
    client = await connect()
    await client.send(get())
    await client.read_head()
    await trio.testing.wait_all_tasks_blocked()
    assert sent <= 2
    await client.read_exactly(10_000)
    await trio.testing.wait_all_tasks_blocked()
    assert sent <= 13


async def test_request_body_arrives_as_chunks_then_more_body_false(serve):
    messages: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while not messages or messages[-1]["more_body"]:
            messages.append(await receive())
        await hello(scope, receive, send)

    connect = await serve(ASGIHandler(app))
    client = await connect()
    await client.send(get("/", "Transfer-Encoding: chunked", method="POST"))
    await client.send(b"3\r\nabc\r\n")
    await trio.testing.wait_all_tasks_blocked()
    await client.send(b"2\r\nde\r\n0\r\n\r\n")
    assert (await client.read_response()).status == 200
    assert all(message["type"] == "http.request" for message in messages)
    assert b"".join(message["body"] for message in messages) == b"abcde"
    assert [message["more_body"] for message in messages][-1] is False
    assert all(message["more_body"] for message in messages[:-1])


async def test_request_without_body_gives_one_empty_message(serve):
    messages: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        messages.append(await receive())
        await hello(scope, receive, send)

    connect = await serve(ASGIHandler(app))
    client = await connect()
    await client.send(get())
    await client.read_response()
    assert messages == [{"type": "http.request", "body": b"", "more_body": False}]


async def test_receive_after_the_response_gives_http_disconnect(serve):
    after: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await hello(scope, receive, send)
        after.append(await receive())

    connect = await serve(ASGIHandler(app))
    client = await connect()
    await client.send(get())
    await client.read_response()
    await trio.testing.wait_all_tasks_blocked()
    assert after == [{"type": "http.disconnect"}]


async def test_receive_waiting_for_disconnect_is_woken_when_the_stream_ends(serve):
    after: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def watch() -> None:
            await receive()
            after.append(await receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await streaming(scope, receive, send)

    connect = await serve(ASGIHandler(app))
    client = await connect()
    await client.send(get())
    assert (await client.read_response()).body == b"one two three"
    await trio.testing.wait_all_tasks_blocked()
    assert after == [{"type": "http.disconnect"}]


async def test_bad_request_body_gets_its_status_and_the_app_a_disconnect(serve):
    messages: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        messages.append(await receive())
        raise ConnectionError("the client went away")

    connect = await serve(ASGIHandler(app), max_body_size=4)
    client = await connect()
    await client.send(get("/", "Transfer-Encoding: chunked", method="POST") + b"9\r\n123456789\r\n0\r\n\r\n")
    response = await client.read_response()
    assert response.status == 413 and response.header("connection") == "close"
    assert messages == [{"type": "http.disconnect"}]


@pytest.mark.parametrize(
    "messages",
    [
        [{"type": "http.response.body", "body": b"x"}],
        [{"type": "http.response.start", "status": 200}, {"type": "http.response.start", "status": 200}],
        [{"type": "http.response.start", "status": 200}, {"type": "http.response.trailers"}],
        [{"type": "http.response.start", "status": 200, "trailers": True}],
        [{"type": "http.response.start", "status": 101}, {"type": "http.response.body"}],
        [
            {"type": "http.response.start", "status": 200, "headers": [(b"bad name", b"x")]},
            {"type": "http.response.body"},
        ],
    ],
    ids=["body-before-start", "start-twice", "trailers", "trailers-asked", "informational-status", "bad-header"],
)
async def test_messages_out_of_the_rules_get_the_client_a_500(serve, messages, caplog):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)

    connect = await serve(ASGIHandler(app))
    client = await connect()
    await client.send(get())
    assert (await client.read_response()).status == 500
    assert len([record for record in caplog.records if record.levelno >= logging.ERROR]) == 1


async def test_body_after_the_end_raises_in_the_app_and_the_response_stands(serve, caplog):
    errors: list[Exception] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await hello(scope, receive, send)
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except RuntimeError as error:
            errors.append(error)

    connect = await serve(ASGIHandler(app))
    client = await connect()
    await client.send(get() + get())
    assert [(await client.read_response()).body for _ in range(2)] == [b"hello", b"hello"]
    assert len(errors) == 2 and "after the response body ended" in str(errors[0])


async def test_app_returning_without_a_response_gets_a_500_and_one_log(serve, caplog):
    async def silent(scope: Any, receive: Any, send: Any) -> None:
        pass

    connect = await serve(ASGIHandler(silent))
    client = await connect()
    await client.send(get())
    assert (await client.read_response()).status == 500
    (record,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert "without completing its response" in str(record.exc_info[1])


async def test_app_returning_after_start_only_gets_a_500(serve):
    async def half(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204})

    connect = await serve(ASGIHandler(half))
    client = await connect()
    await client.send(get())
    assert (await client.read_response()).status == 500


async def test_app_raising_before_its_response_gets_a_500_and_the_server_lives(serve, caplog):
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/fail":
            raise ValueError("boom")
        await hello(scope, receive, send)

    connect = await serve(ASGIHandler(failing))
    client = await connect()
    await client.send(get("/fail"))
    assert (await client.read_response()).status == 500
    client = await connect()
    await client.send(get("/"))
    assert (await client.read_response()).body == b"hello"
    (record,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert isinstance(record.exc_info[1], ValueError)


async def test_app_raising_in_the_middle_of_a_stream_aborts_the_connection(serve, caplog):
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom")

    connect = await serve(ASGIHandler(broken))
    client = await connect()
    await client.send(get())
    response = await client.read_head()
    assert response.header("transfer-encoding") == "chunked"
    with pytest.raises(EOFError):
        await client.read_chunked()


async def test_app_returning_in_the_middle_of_a_stream_aborts_the_connection(serve, caplog):
    async def unfinished(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})

    connect = await serve(ASGIHandler(unfinished))
    client = await connect()
    await client.send(get())
    await client.read_head()
    with pytest.raises(EOFError):
        await client.read_chunked()


async def test_head_request_drops_a_streamed_body_and_stops_the_app(serve):
    finished: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await streaming(scope, receive, send)
        finished.append(scope["method"])

    connect = await serve(ASGIHandler(app))
    client = await connect()
    await client.send(get(method="HEAD") + get())
    head = await client.read_response(head_request=True)
    assert head.status == 200 and head.body == b""
    assert (await client.read_response()).body == b"one two three"
    await trio.testing.wait_all_tasks_blocked()
    assert finished == ["GET"]


async def test_work_after_the_response_survives_the_connection_close(serve, autojump_clock):
    done: list[float] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await hello(scope, receive, send)
        await trio.sleep(5)
        done.append(trio.current_time())

    connect = await serve(ASGIHandler(app))
    client = await connect()
    await client.send(get("/", "Connection: close"))
    assert (await client.read_response()).body == b"hello"
    await client.aclose()
    await trio.sleep(10)
    assert len(done) == 1


def answer_then_work(done: list[float]) -> Any:
    """An app that reads the body, answers, then works for 5 s (a background task)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await hello(scope, receive, send)
        await trio.sleep(5)
        done.append(trio.current_time())

    return app


async def test_work_after_answering_a_closing_post_survives_the_close(serve, autojump_clock):
    done: list[float] = []
    connect = await serve(ASGIHandler(answer_then_work(done)))
    client = await connect()
    await client.send(post("/", b"data")[:-4].replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n") + b"data")
    assert (await client.read_response()).body == b"hello"
    await trio.sleep(10)
    assert len(done) == 1


async def test_work_after_answering_a_post_survives_the_client_leaving(serve, autojump_clock):
    done: list[float] = []
    connect = await serve(ASGIHandler(answer_then_work(done)))
    client = await connect()
    await client.send(post("/", b"data"))
    assert (await client.read_response()).body == b"hello"
    await client.aclose()
    await trio.sleep(10)
    assert len(done) == 1


async def test_pipelined_gets_run_the_app_concurrently(serve_tcp):
    arrived = 0
    all_arrived = trio.Event()

    async def meet(scope: Any, receive: Any, send: Any) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 8:
            all_arrived.set()
        await all_arrived.wait()
        await hello(scope, receive, send)

    connect = await serve_tcp(ASGIHandler(meet), max_pipeline=8)
    client = await connect()
    await client.send(get() * 8)
    with trio.fail_after(10):
        bodies = [(await client.read_response()).body for _ in range(8)]
    assert bodies == [b"hello"] * 8


async def test_eight_pipelined_sleeps_of_half_a_second_take_half_a_second(serve_memory, autojump_clock):
    async def nap(scope: Any, receive: Any, send: Any) -> None:
        await trio.sleep(0.5)
        await hello(scope, receive, send)

    connect = await serve_memory(ASGIHandler(nap), max_pipeline=8)
    client = await connect()
    start = trio.current_time()
    await client.send(get() * 8)
    for _ in range(8):
        await client.read_response()
    assert trio.current_time() - start == pytest.approx(0.5)


async def test_a_malformed_websocket_handshake_is_refused_with_400_without_calling_the_app(serve):
    scopes: list[Any] = []
    connect = await serve(ASGIHandler(recording(scopes)))
    client = await connect()
    upgrade = ("Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: x")
    await client.send(get("/ws", *upgrade))
    response = await client.read_response()
    assert response.status == 400 and b"WebSocket" in response.body
    assert scopes == []


async def test_asgi2_app_is_detected_and_served(serve):
    class App:
        def __init__(self, scope: Any) -> None:
            self.scope = scope

        async def __call__(self, receive: Any, send: Any) -> None:
            await hello(self.scope, receive, send)

    connect = await serve(ASGIHandler(App))
    client = await connect()
    await client.send(get())
    assert (await client.read_response()).body == b"hello"
