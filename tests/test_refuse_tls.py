"""A connection refused at the connection limit is answered in the protocol its client speaks:
over TLS after the handshake, in HTTP/2 (on the client's first stream, then GOAWAY) to a client
that picked ``h2`` by ALPN, and recorded by ``on_response`` like any response."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import httpx
import pytest
import trio
from _tls import Certificates, serve_https
from conftest import hello

from trio_httpchannel import HTTPChannel, ResponseRecord

CURL = shutil.which("curl")
MESSAGE = "503 Service Unavailable: the server is at its connection limit; try again shortly\n"


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates(tmp_path)


async def occupy(port: int, context: ssl.SSLContext) -> trio.SSLStream[trio.SocketStream]:
    """A connection through its handshake, taking the server's one place."""
    stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), context, server_hostname="127.0.0.1")
    await stream.do_handshake()
    return stream


async def full_server(
    nursery: trio.Nursery, certificates: Certificates, records: list[ResponseRecord]
) -> tuple[int, trio.SSLStream[trio.SocketStream]]:
    """A server at its limit of one connection: its port, and the connection taking its place
    (keep it: once collected, its socket closes)."""
    context = certificates.server_context()
    channel = HTTPChannel(hello, on_response=records.append)
    port = await serve_https(nursery, channel, context, max_connections=1)
    return port, await occupy(port, certificates.client_context())


async def recorded(records: list[ResponseRecord]) -> ResponseRecord:
    with trio.fail_after(5):
        while not records:
            await trio.sleep(0.01)
    (record,) = records
    return record


async def test_an_http2_client_is_refused_503_on_its_stream_in_http2(nursery, certificates):
    records: list[ResponseRecord] = []
    port, _occupying = await full_server(nursery, certificates, records)
    async with httpx.AsyncClient(verify=certificates.client_context(), http2=True) as client:
        response = await client.get(f"https://127.0.0.1:{port}/")
    assert (response.http_version, response.status_code) == ("HTTP/2", 503)
    assert response.headers["retry-after"] == "1" and response.text == MESSAGE
    assert response.headers["server"] == "trio-httpchannel" and "date" in response.headers
    record = await recorded(records)
    assert (record.status, record.request, record.complete) == (503, None, True) and record.sent > len(MESSAGE)


async def test_an_http1_client_over_tls_is_refused_503_in_http1(nursery, certificates):
    records: list[ResponseRecord] = []
    port, _occupying = await full_server(nursery, certificates, records)
    async with httpx.AsyncClient(verify=certificates.client_context()) as client:
        response = await client.get(f"https://127.0.0.1:{port}/")
    assert (response.http_version, response.status_code, response.text) == ("HTTP/1.1", 503, MESSAGE)
    assert response.headers["connection"] == "close"
    assert (await recorded(records)).status == 503


@pytest.mark.skipif(
    CURL is None, reason="curl is not installed (scripts/test installs it with apt-get when run as root)"
)
async def test_curl_over_http2_reads_the_503(nursery, certificates):
    assert CURL is not None
    port, _occupying = await full_server(nursery, certificates, [])
    ca = certificates.directory / "ca.pem"
    result = await trio.run_process(
        [
            CURL,
            "-s",
            "--http2",
            "--cacert",
            str(ca),
            "-w",
            "%{http_version} %{http_code}",
            f"https://127.0.0.1:{port}/",
        ],
        capture_stdout=True,
        check=False,
    )
    assert result.stdout.decode() == MESSAGE + "2 503"


async def test_a_cleartext_refusal_is_recorded_too(nursery):
    records: list[ResponseRecord] = []
    channel = HTTPChannel(hello, on_response=records.append)

    async def refuse(stream: trio.SocketStream) -> None:
        await channel.refuse(stream, 503, "busy", linger=1)

    listeners = await nursery.start(trio.serve_tcp, refuse, 0)
    stream = await trio.open_tcp_stream("127.0.0.1", listeners[0].socket.getsockname()[1])
    address = stream.socket.getsockname()[:2]
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    while await stream.receive_some():
        pass
    await stream.aclose()
    record = await recorded(records)
    assert (record.status, record.request, record.complete, record.client) == (503, None, True, address)
