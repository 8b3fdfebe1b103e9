"""A cleartext connection refused at the connection limit (``Server(max_connections=...)``) is
answered in the protocol its client speaks: a client opening with the HTTP/2 preface (prior
knowledge) gets the 503 on its first stream in HTTP/2, then GOAWAY; an HTTP/1.1 client gets it
in HTTP/1.1. Real loopback sockets; the clients are h2's client side, curl and httpx."""

from __future__ import annotations

import shutil

import h2.errors
import httpx
import pytest
import trio
from _h2 import H2Client
from conftest import GET, RawClient, connect_tcp, hello

from trio_httpchannel import HTTPChannel, ResponseRecord
from trio_httpchannel.server import Server

CURL = shutil.which("curl")
MESSAGE = "503 Service Unavailable: the server is at its connection limit; try again shortly\n"


class Refusals:
    """The records of the 503s a server answered, as they come."""

    def __init__(self) -> None:
        self.records: list[ResponseRecord] = []
        self._changed = trio.Event()

    def __call__(self, record: ResponseRecord) -> None:
        if record.status == 503:
            self.records.append(record)
            self._changed.set()
            self._changed = trio.Event()

    async def first(self) -> ResponseRecord:
        while not self.records:
            await self._changed.wait()
        return self.records[0]


async def full_server(nursery: trio.Nursery, refusals: Refusals) -> tuple[int, RawClient]:
    """A server at its limit of one connection: its port, and the connection taking its place
    (answered once, so that the server counts it; keep it open)."""
    server = Server(HTTPChannel(hello, on_response=refusals), max_connections=1)
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(server.serve_listeners, [listener])
    port = listener.socket.getsockname()[1]
    occupying = await connect_tcp(port)
    await occupying.send(GET)
    assert (await occupying.read_response()).status == 200
    return port, occupying


async def test_a_prior_knowledge_client_is_refused_503_on_its_stream_then_goaway(nursery):
    refusals = Refusals()
    port, _occupying = await full_server(nursery, refusals)
    client = H2Client(await trio.open_tcp_stream("127.0.0.1", port))
    await client.start()
    response = await client.get("/")
    while client.terminated is None:
        assert await client.receive(), "the connection closed without GOAWAY"
    await client.stream.aclose()
    assert (response.status, response.header("retry-after"), bytes(response.body)) == (503, "1", MESSAGE.encode())
    assert (client.terminated.error_code, client.terminated.last_stream_id) == (h2.errors.ErrorCodes.NO_ERROR, 1)
    record = await refusals.first()
    assert (record.request, record.complete) == (None, True) and record.sent > len(MESSAGE)


@pytest.mark.skipif(
    CURL is None, reason="curl is not installed (scripts/test installs it with apt-get when run as root)"
)
async def test_curl_with_http2_prior_knowledge_reads_the_503(nursery):
    assert CURL is not None
    port, _occupying = await full_server(nursery, Refusals())
    command = [CURL, "-s", "--http2-prior-knowledge", "-w", "%{http_version} %{http_code}", f"http://127.0.0.1:{port}/"]
    result = await trio.run_process(command, capture_stdout=True, check=False)
    assert result.stdout.decode() == MESSAGE + "2 503"


async def test_an_http1_client_in_cleartext_is_still_refused_503_in_http1(nursery):
    refusals = Refusals()
    port, _occupying = await full_server(nursery, refusals)
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/")
    assert (response.http_version, response.status_code, response.text) == ("HTTP/1.1", 503, MESSAGE)
    assert response.headers["connection"] == "close"
    assert (await refusals.first()).complete
