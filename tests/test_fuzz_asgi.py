"""Fuzzing one connection served through the ASGI adapter: the invariants of ``_fuzz.py`` on
random request streams, with apps that do what ASGI apps commonly do.

- ``/r…`` targets (and every GET and HEAD): an app that sends an early hint (where advertised:
  a ``103`` goes out from its task, or is dropped, among the pipelined answers), reads
  ``receive()`` until ``more_body`` is false *or* ``http.disconnect`` (the common loop) and
  then echoes what it read, so that a body cut short would show in the echo if the channel let
  the answer out;
- ``/n…`` targets: an app that answers before reading, then reads the body (as one that logs
  or stores an upload after answering does).

Both record the bodies they took as complete, for the check that each is byte for byte a body
the client sent, and let ``ClientDisconnected`` from ``send()`` propagate (it must not be logged
as an error). ``HTTPCHANNEL_FUZZ_PROFILE=long`` (``scripts/fuzz``) runs the long profile.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from _fuzz import Example, examples
from _fuzz_checks import check
from _fuzz_run import Run, exercise
from _hypothesis_profiles import fuzz_settings
from hypothesis import given

from trio_httpchannel.asgi import ASGIHandler

Message = dict[str, Any]


async def read_body(receive: Any) -> bytes | None:
    """The body, or ``None`` when ``http.disconnect`` came before its end."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message["body"]
        if not message["more_body"]:
            return body


async def answer(send: Any, scope: Message, body: bytes) -> None:
    headers = [(b"x-method", scope["method"].encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": target(scope).encode() + b"\n" + body})


def target(scope: Message) -> str:
    query = scope["query_string"].decode("latin-1")
    return scope["raw_path"].decode("latin-1") + (f"?{query}" if query else "")


def echo_app(example: Example, run: Run) -> ASGIHandler:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        run.handlers_started += 1
        try:
            await run.sleep(example.handler_delays.get(target(scope), 0.0))
            if scope["path"].startswith("/n"):
                await answer_then_read(scope, receive, send, run)
            else:
                await read_then_echo(scope, receive, send, run)
        finally:
            run.handlers_ended += 1

    return ASGIHandler(app)


async def read_then_echo(scope: Message, receive: Any, send: Any, run: Run) -> None:
    if "http.response.early_hint" in scope["extensions"]:
        await send({"type": "http.response.early_hint", "links": [b"</s.css>; rel=preload"]})
    body = await read_body(receive)
    if body is not None:
        run.complete_bodies.append((target(scope), body))
    await answer(send, scope, body or b"")


async def answer_then_read(scope: Message, receive: Any, send: Any, run: Run) -> None:
    await answer(send, scope, b"")
    body = await read_body(receive)
    if body is not None:
        run.complete_bodies.append((target(scope), body))


@fuzz_settings()
@given(examples())
def test_random_request_streams_through_asgi_keep_every_invariant(example: Example) -> None:
    """Pins the invariants listed in ``_fuzz.py`` on random request streams, through ASGI."""
    run = trio.run(exercise, example, echo_app, clock=trio.testing.MockClock(autojump_threshold=0))
    check(example, run)
