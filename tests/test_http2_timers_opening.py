"""The opening (is this HTTP/2?) of a connection whose first bytes could begin the preface: a
request split after its ``P`` gets ``header_timeout`` from its first byte, as any HTTP/1.1 head
does, not what is left of the idle ``timeout`` (found by the long fuzz run); and when no more
comes, the 408 HTTP/1.1 gives a head that did not arrive in time (as with h2 off)."""

from __future__ import annotations

import pytest
import trio
from conftest import RawClient, RawClientFactory, hello

POST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"


async def test_a_request_split_after_its_p_is_answered_past_the_idle_timeout(serve_memory, autojump_clock):
    connect: RawClientFactory = await serve_memory(hello, timeout=5, header_timeout=20)
    client: RawClient = await connect()
    await client.send(POST[:1])
    await trio.sleep(10)
    await client.send(POST[1:])
    response = await client.read_response()
    assert response.status == 200


@pytest.mark.parametrize("h2", [True, False])
@pytest.mark.parametrize("sent", [b"P", b"PRI * HTTP/2.0\r\n"])
async def test_a_head_that_could_begin_the_preface_gets_408_at_header_timeout_as_without_h2(
    serve_memory, autojump_clock, h2, sent
):
    connect: RawClientFactory = await serve_memory(hello, timeout=5, header_timeout=20, h2=h2)
    client: RawClient = await connect()
    await client.send(sent)
    response = await client.read_response()
    assert response.status == 408
    assert trio.current_time() == 20
