"""The README's runnable examples, run as written in a subprocess: each serves on 127.0.0.1,
answers, and exits with status 0 and no traceback on Ctrl-C (SIGINT).

The harness changes one thing: the default port of ``serve`` is 0 (a free port, which it
prints on stderr once bound), so that the test never competes for port 8000.
"""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio
from cli_apps.harness import Processes, ServerProcess
from conftest import GET, connect_tcp, websockets_client

README = Path(__file__).parent.parent / "README.md"
EXAMPLES = [
    block for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL) if "trio.run(" in block
]

HARNESS = """
import sys
import trio_httpchannel.server.serving as server

bind = server.bind

def bind_and_tell(*args, **kwargs):
    sockets = bind(*args, **kwargs)
    print("harness: listening on %s:%d" % sockets[0].getsockname()[:2], file=sys.stderr, flush=True)
    return sockets

server.bind = bind_and_tell
server.serve.__kwdefaults__["port"] = 0
exec(compile(sys.argv[1], "README.md", "exec"), {"__name__": "__main__"})
"""


@pytest.fixture
async def run_example(nursery: trio.Nursery) -> AsyncIterator[Callable[[str], Awaitable[ServerProcess]]]:
    """``example = await run_example(code)`` runs ``code`` under the harness; killed at the end."""
    processes = Processes(nursery)

    async def start(code: str) -> ServerProcess:
        return await processes.start([sys.executable, "-c", HARNESS, code], {})

    yield start
    await processes.kill_all()


REQUESTS = [
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", b"you sent 5 bytes\n"),
    (GET, b"WebSocket at /chat\n"),
    (GET, b"hello"),
]


def test_the_readme_has_a_native_a_starlette_and_a_websocket_example():
    assert len(EXAMPLES) == len(REQUESTS) == 3


async def test_readme_websocket_example_echoes_over_the_websockets_client(run_example):
    example = await run_example(EXAMPLES[1])
    listening = await example.stderr.wait_for(r"harness: listening on (\S+):(\d+)")
    client = await connect_tcp(int(listening.group(2)))
    with trio.fail_after(30):
        async with websockets_client(client, "/chat", subprotocols=["chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
            await ws.send("hello")
            assert await ws.recv() == "hello"
    example.process.send_signal(signal.SIGINT)
    with trio.fail_after(30):
        assert await example.process.wait() == 0
        await example.stderr.wait_closed()
    assert "Traceback" not in example.stderr.text


@pytest.mark.parametrize("index", range(len(REQUESTS)), ids=["native", "websocket", "starlette"])
async def test_readme_example_serves_on_loopback_and_exits_cleanly_on_ctrl_c(run_example, index):
    example = await run_example(EXAMPLES[index])
    listening = await example.stderr.wait_for(r"harness: listening on (\S+):(\d+)")
    assert listening.group(1) == "127.0.0.1"
    client = await connect_tcp(int(listening.group(2)))
    request, expected = REQUESTS[index]
    await client.send(request)
    with trio.fail_after(30):
        response = await client.read_response()
    assert (response.status, response.body) == (200, expected)
    example.process.send_signal(signal.SIGINT)
    with trio.fail_after(30):
        status = await example.process.wait()
        await example.stderr.wait_closed()
    assert "Traceback" not in example.stderr.text
    assert status == 0, example.stderr.text
