"""The ASGI websocket scope through ASGIHandler: the scope, each message rule of the spec and the
denial extension, with tiny raw ASGI apps, checked by the websockets client or raw bytes."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import CLOSE, open_raw_websocket, read_frame, websockets_client, ws_close_frame, ws_upgrade
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from trio_httpchannel.asgi import ASGIHandler

Message = dict[str, Any]


async def echo(scope: Any, receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", **{key: message[key] for key in ("text", "bytes") if key in message}})


@pytest.fixture
def serve_app(serve_tcp: Any) -> Any:
    async def start(app: Any, **options: Any) -> Any:
        return await serve_tcp(ASGIHandler(app, **options), ws_ping_interval=None)

    return start


def recording(messages: list[Message], app: Any = None) -> Any:
    """An app that accepts, then records what it receives until the disconnect."""

    async def recorder(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            messages.append(await receive())
            if messages[-1]["type"] == "websocket.disconnect":
                return

    return app or recorder


def errors(caplog: Any) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_the_scope_has_the_websocket_keys_of_the_spec(serve_app):
    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await send({"type": "websocket.close"})

    connect = await serve_app(app, root_path="/api", state={"db": "handle"})
    client = await connect()
    await client.send(ws_upgrade("/caf%C3%A9?q=1", "Sec-WebSocket-Protocol: chat, json"))
    await client.read_response()
    (scope,) = scopes
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (scope["http_version"], scope["scheme"]) == ("1.1", "ws")
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/api/café", b"/api/caf%C3%A9", b"q=1")
    assert scope["root_path"] == "/api"
    assert (b"sec-websocket-protocol", b"chat, json") in scope["headers"]
    assert scope["subprotocols"] == ["chat", "json"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"][0] == "127.0.0.1"
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["state"] == {"db": "handle"}


async def test_each_websocket_gets_a_shallow_copy_of_the_lifespan_state(serve_app):
    state = {"count": 0}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["state"]["count"] += 1
        await send({"type": "websocket.close"})

    connect = await serve_app(app, state=state)
    for _ in range(2):
        client = await connect()
        await client.send(ws_upgrade())
        await client.read_response()
    assert state == {"count": 0}


async def test_text_and_bytes_are_received_and_sent(serve_app):
    connect = await serve_app(echo)
    async with websockets_client(await connect()) as ws:
        await ws.send("text")
        await ws.send(b"bytes")
        assert (await ws.recv(), await ws.recv()) == ("text", b"bytes")


async def test_accept_sends_the_subprotocol_and_headers(serve_app):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "json", "headers": [[b"x-room", b"7"]]})
        await send({"type": "websocket.send", "text": "hi"})

    connect = await serve_app(app)
    async with websockets_client(await connect(), subprotocols=["chat", "json"]) as ws:
        assert (ws.subprotocol, ws.response.headers["x-room"]) == ("json", "7")
        assert await ws.recv() == "hi"


async def test_close_before_accept_is_a_403(serve_app):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})

    connect = await serve_app(app)
    with pytest.raises(InvalidStatus) as refused:
        async with websockets_client(await connect()):
            pass
    assert refused.value.response.status_code == 403


async def test_the_denial_response_extension_sends_the_apps_response(serve_app):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {"type": "websocket.http.response.start", "status": 401, "headers": [(b"www-authenticate", b"Bearer")]}
        )
        await send({"type": "websocket.http.response.body", "body": b"log in ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"first"})

    connect = await serve_app(app)
    client = await connect()
    await client.send(ws_upgrade())
    response = await client.read_response()
    assert (response.status, response.header("www-authenticate"), response.body) == (401, "Bearer", b"log in first")
    assert await client.read_to_eof() == b""


async def test_an_app_returning_in_the_middle_of_its_denial_is_a_500(serve_app, caplog):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401})
        await send({"type": "websocket.http.response.body", "body": b"partial", "more_body": True})

    connect = await serve_app(app)
    client = await connect()
    await client.send(ws_upgrade())
    assert (await client.read_response()).status == 500
    assert [record.exc_info[0] for record in errors(caplog) if record.exc_info] == [RuntimeError]


async def test_an_app_failing_before_accept_is_a_500_logged_once(serve_app, caplog):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("no")

    connect = await serve_app(app)
    client = await connect()
    await client.send(ws_upgrade())
    assert (await client.read_response()).status == 500
    assert len(errors(caplog)) == 1


async def test_an_app_sending_a_message_before_accepting_is_a_500(serve_app, caplog):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.send", "text": "too early"})

    connect = await serve_app(app)
    client = await connect()
    await client.send(ws_upgrade())
    assert (await client.read_response()).status == 500
    assert "websocket.send" in caplog.text


async def test_an_app_failing_after_accept_closes_with_1011(serve_app, caplog):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise ValueError("no")

    connect = await serve_app(app)
    async with websockets_client(await connect()) as ws:
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert ws.close_code == 1011
    assert len(errors(caplog)) == 1


async def test_an_app_returning_after_accept_closes_with_1000(serve_app):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})

    connect = await serve_app(app)
    async with websockets_client(await connect()) as ws:
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        assert ws.close_code == 1000


async def test_the_apps_close_code_and_reason_reach_the_client(serve_app):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4003, "reason": "forbidden room"})

    connect = await serve_app(app)
    async with websockets_client(await connect()) as ws:
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4003, "forbidden room")


async def test_the_clients_close_code_and_reason_reach_the_app(serve_app):
    messages: list[Message] = []
    connect = await serve_app(recording(messages))
    async with websockets_client(await connect()) as ws:
        await ws.send("first")
        await ws.aclose(4001, "bye")
    assert messages == [
        {"type": "websocket.receive", "text": "first"},
        {"type": "websocket.disconnect", "code": 4001, "reason": "bye"},
    ]


async def test_a_close_without_a_code_reaches_the_app_as_1005(serve_app):
    messages: list[Message] = []
    connect = await serve_app(recording(messages))
    client = await connect()
    await open_raw_websocket(client)
    await client.send(ws_close_frame())
    assert (await read_frame(client)).opcode == CLOSE
    assert await client.read_to_eof() == b""
    assert messages == [{"type": "websocket.disconnect", "code": 1005, "reason": ""}]


async def test_send_after_the_disconnect_raises_an_os_error_that_is_not_logged(serve_app, caplog):
    raised: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        try:
            await send({"type": "websocket.send", "text": "anyone?"})
        except OSError as error:
            raised.append(error)
            raise

    connect = await serve_app(app)
    async with websockets_client(await connect()) as ws:
        await ws.aclose()
    assert len(raised) == 1
    assert errors(caplog) == []


async def test_a_message_with_both_text_and_bytes_is_an_app_error(serve_app, caplog):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "a", "bytes": b"b"})

    connect = await serve_app(app)
    async with websockets_client(await connect()) as ws:
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert ws.close_code == 1011
    assert "exactly one of 'text' and 'bytes'" in caplog.text


async def test_a_subprotocol_the_client_did_not_offer_is_an_app_error(serve_app, caplog):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "unoffered"})

    connect = await serve_app(app)
    client = await connect()
    await client.send(ws_upgrade())
    assert (await client.read_response()).status == 500
    assert "not offered" in caplog.text


async def test_an_upgrade_reaching_the_http_side_is_refused_with_400(serve_tcp):
    handler = ASGIHandler(echo)

    async def wrapped(request: Any) -> Any:
        return await handler(request)

    connect = await serve_tcp(wrapped)
    client = await connect()
    await client.send(ws_upgrade())
    assert (await client.read_response()).status == 400
