"""The command line's access log (stdout): one line per response that started to go out, with
the client, also for a request refused before it was parsed, and ``cut-short`` for a response
the client did not wait for."""

from __future__ import annotations

import trio
from cli_apps.harness import Start, cli  # noqa: F401 (cli is a fixture)
from conftest import RawClient


async def test_refused_head_is_logged_with_the_client_host(cli: Start) -> None:
    server = await cli("apps:native")
    client = RawClient(await server.open())
    await client.send(b"GARBAGE\r\n\r\n")
    with trio.fail_after(30):
        assert (await client.read_response()).status == 400
    line = await server.stdout.wait_for(r'"-" 400 ')
    assert line.string.startswith("127.0.0.1 - - [")
    assert not line.string.endswith("cut-short")


async def test_response_cut_by_the_client_leaving_is_logged_cut_short(cli: Start) -> None:
    server = await cli("apps:endless")
    client = RawClient(await server.open())
    await client.send(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
    with trio.fail_after(30):
        await client.read_head()
        await client.read_exactly(100_000)
    await client.aclose()
    line = await server.stdout.wait_for(r'"GET /forever HTTP/1.1" 200 \d+ [\d.]+ms cut-short$')
    assert line.string.startswith("127.0.0.1 - - [")
