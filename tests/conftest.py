"""Fixtures: a channel served over a real loopback socket or a memory stream, and the raw client
that talks to it. The helpers many test files share live in modules by idea and are re-exported
here, so that a test imports them all from ``conftest``:

- ``_raw_client``: ``RawClient``, which writes raw bytes and reads responses off the wire,
  checked by h11 (``_http_check``), and the ways to open one;
- ``_requests``: requests as a client writes them, and the bounds of the tests' waits;
- ``_apps``: small handlers and apps;
- ``_ws_frames``: WebSocket frames as a client writes them and as the server writes them;
- ``_leaks``: the books of the leak tests;
- ``_proxy_headers``: PROXY protocol version 2 headers.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from _apps import EventStream, echo, hello, http_handler, ws_echo
from _h2_serving import H2Server, h2_memory, h2_tcp
from _http_check import as_rfc_9110_reads_it
from _leaks import Books, Client, open_fds, run_served
from _proxy_headers import inet, tlv, v2
from _raw_client import (
    MemoryListener,
    RawClient,
    RawClientFactory,
    RawResponse,
    ask,
    connect_tcp,
    connect_to,
    read_to_eof,
)
from _requests import GET, GUARD, MB, H, get, post
from _ws_frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    DEFLATE,
    PING,
    PONG,
    RSV1,
    TEXT,
    WS_ACCEPT,
    WS_KEY,
    Frame,
    deflated,
    open_raw_websocket,
    read_frame,
    websockets_client,
    ws_close_frame,
    ws_frame,
    ws_upgrade,
)

from trio_httpchannel import HTTPChannel
from trio_httpchannel.asgi import ASGIHandler, Lifespan

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "DEFLATE",
    "GET",
    "GUARD",
    "H",
    "MB",
    "PING",
    "PONG",
    "RSV1",
    "TEXT",
    "WS_ACCEPT",
    "WS_KEY",
    "Books",
    "Client",
    "EventStream",
    "Frame",
    "MemoryListener",
    "RawClient",
    "RawClientFactory",
    "RawResponse",
    "as_rfc_9110_reads_it",
    "ask",
    "connect_tcp",
    "connect_to",
    "deflated",
    "echo",
    "get",
    "hello",
    "http_handler",
    "inet",
    "open_fds",
    "open_raw_websocket",
    "post",
    "read_frame",
    "read_to_eof",
    "run_served",
    "tlv",
    "v2",
    "websockets_client",
    "ws_close_frame",
    "ws_echo",
    "ws_frame",
    "ws_upgrade",
]

Serve = Callable[..., Awaitable[RawClientFactory]]
"""``connect = await serve(handler, **settings)``: what the serving fixtures give."""


@pytest.fixture
def serve_tcp(nursery: trio.Nursery) -> Serve:
    """``connect = await serve_tcp(handler, **settings)`` serves ``HTTPChannel(handler, ...)`` on
    a loopback port; ``client = await connect()`` opens a real TCP connection to it."""

    async def start(handler: Any, **settings: Any) -> RawClientFactory:
        channel = HTTPChannel(handler, **settings)
        listeners = await nursery.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]

        return functools.partial(connect_tcp, port)

    return start


def _serve_in_memory(nursery: trio.Nursery, make_pair: Callable[[], tuple[Any, Any]]) -> Serve:
    async def start(handler: Any, **settings: Any) -> RawClientFactory:
        channel = HTTPChannel(handler, **settings)

        async def connect() -> RawClient:
            client, server = make_pair()
            nursery.start_soon(channel, server)
            return RawClient(client)

        return connect

    return start


@pytest.fixture
def serve_memory(nursery: trio.Nursery) -> Serve:
    """Like ``serve_tcp`` over ``trio.testing.memory_stream_pair``: for the protocol rules and
    for every timer under ``autojump_clock``."""
    return _serve_in_memory(nursery, trio.testing.memory_stream_pair)


@pytest.fixture
def serve_lockstep(nursery: trio.Nursery) -> Serve:
    """Like ``serve_memory`` over ``trio.testing.lockstep_stream_pair``: no buffer at all
    between client and server, so every send waits for the other side to read."""
    return _serve_in_memory(nursery, trio.testing.lockstep_stream_pair)


@pytest.fixture
def serve_asgi(nursery: trio.Nursery) -> Callable[..., Awaitable[str]]:
    """``url = await serve_asgi(app, **settings)`` runs ``app``'s lifespan startup, then serves it
    through ``ASGIHandler`` on a loopback port, and returns the server's base URL."""

    async def run(app: Any, settings: dict[str, Any], *, task_status: trio.TaskStatus[str]) -> None:
        async with Lifespan(app) as lifespan:
            channel = HTTPChannel(ASGIHandler(app, state=lifespan.state), **settings)
            async with trio.open_nursery() as inner:
                listeners = await inner.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
                task_status.started(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}")

    async def start(app: Any, **settings: Any) -> str:
        return await nursery.start(run, app, settings)  # type: ignore[no-any-return]

    return start


@pytest.fixture(params=["tcp", "memory"])
def serve(request: pytest.FixtureRequest, serve_tcp: Any, serve_memory: Any) -> Any:
    """Each test that uses it runs twice: over a real loopback socket and over memory streams."""
    return serve_tcp if request.param == "tcp" else serve_memory


@pytest.fixture(params=["tcp", "memory"])
def serve_h2(request: pytest.FixtureRequest, nursery: trio.Nursery) -> Callable[..., Awaitable[H2Server]]:
    """``server = await serve_h2(handler, **settings)``: over a loopback socket and over memory
    streams (each test runs both ways)."""
    return h2_tcp(nursery) if request.param == "tcp" else h2_memory(nursery)


@pytest.fixture
def serve_h2_memory(nursery: trio.Nursery) -> Callable[..., Awaitable[H2Server]]:
    """Like ``serve_h2`` over memory streams only: for the timers, under ``autojump_clock``."""
    return h2_memory(nursery)


@pytest.fixture
def serve_h2_tcp(nursery: trio.Nursery) -> Callable[..., Awaitable[H2Server]]:
    """Like ``serve_h2`` over a loopback socket only: for clients that are other programs."""
    return h2_tcp(nursery)
