"""The ASGI lifespan: startup and shutdown once around serving, state, and apps without it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from trio_httpchannel.asgi import Lifespan, LifespanError


def lifespan_app(events: list[str], *, answer: dict[str, str] | None = None) -> Any:
    """A lifespan app that records what it receives and answers ``complete`` unless told
    otherwise by ``answer`` (phase -> message type suffix, e.g. ``{"startup": "failed"}``)."""
    answer = answer or {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            phase = (await receive())["type"].split(".")[1]
            events.append(phase)
            if phase == "startup":
                scope["state"]["greeting"] = "hi"
            result = answer.get(phase, "complete")
            await send({"type": f"lifespan.{phase}.{result}", "message": f"{phase} went wrong"})
            if phase == "shutdown":
                return

    return app


async def test_startup_before_the_body_and_shutdown_after():
    events: list[str] = []
    async with Lifespan(lifespan_app(events)):
        events.append("serving")
    assert events == ["startup", "serving", "shutdown"]


async def test_state_filled_at_startup_is_the_lifespans_state():
    async with Lifespan(lifespan_app([])) as lifespan:
        assert lifespan.state == {"greeting": "hi"}


async def test_failed_startup_raises_lifespan_error_with_the_apps_message():
    events: list[str] = []
    with pytest.raises(LifespanError, match="startup went wrong"):
        async with Lifespan(lifespan_app(events, answer={"startup": "failed"})):
            events.append("serving")
    assert events == ["startup"]


async def test_app_raising_during_startup_raises_lifespan_error():
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise ConnectionRefusedError("no database")

    with pytest.raises(LifespanError, match="no database") as caught:
        async with Lifespan(app):
            pass
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


async def test_failed_shutdown_is_logged_not_raised(caplog):
    async with Lifespan(lifespan_app([], answer={"shutdown": "failed"})):
        pass
    (record,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert "shutdown went wrong" in record.getMessage()


async def test_app_rejecting_the_lifespan_scope_is_served_without_it(caplog):
    async def http_only(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "only http"

    caplog.set_level(logging.DEBUG)
    async with Lifespan(http_only) as lifespan:
        assert lifespan.state == {}
    assert any("does not support the lifespan" in record.getMessage() for record in caplog.records)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_app_returning_at_once_is_served_without_lifespan(caplog):
    async def ignores(scope: Any, receive: Any, send: Any) -> None:
        return

    async with Lifespan(ignores):
        pass
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_app_answering_every_scope_as_http_is_served_without_lifespan(caplog):
    async def hello(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})

    async with Lifespan(hello) as lifespan:
        assert lifespan.state == {}
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_exception_from_the_body_comes_out_as_it_is_after_shutdown():
    events: list[str] = []
    with pytest.raises(OSError, match="port in use"):
        async with Lifespan(lifespan_app(events)):
            raise OSError("port in use")
    assert events == ["startup", "shutdown"]


async def test_cancelled_body_skips_shutdown_and_leaves_no_task(autojump_clock):
    events: list[str] = []
    with trio.move_on_after(1):
        async with Lifespan(lifespan_app(events)):
            await trio.sleep_forever()
    assert events == ["startup"]


async def test_asgi2_lifespan_app_is_detected():
    events: list[str] = []

    class App:
        def __init__(self, scope: Any) -> None:
            self.app = lifespan_app(events)
            self.scope = scope

        async def __call__(self, receive: Any, send: Any) -> None:
            await self.app(self.scope, receive, send)

    async with Lifespan(App):
        pass
    assert events == ["startup", "shutdown"]
