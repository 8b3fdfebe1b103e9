"""Over TLS a close-delimited body (an HTTP/1.0 client, a streamed response) ends with the
server's close_notify at once: TLS cannot half-close the connection under it, and without the
alert the client would wait for the end of the body until the lingering close gave up."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing
from _tls import Certificates, serve_https

from trio_httpchannel import HTTPChannel, Request, Response

BODY = b"streamed " * 1000


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates(tmp_path)


async def streamed(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1000):
            yield b"streamed "

    return Response(200, {"content-type": "text/plain"}, chunks())


async def test_close_delimited_body_over_tls_ends_at_once(certificates: Certificates, autojump_clock) -> None:
    client_raw, server_raw = trio.testing.memory_stream_pair()
    server = trio.SSLStream(server_raw, certificates.server_context(), server_side=True)
    client = trio.SSLStream(client_raw, certificates.client_context(), server_hostname="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(HTTPChannel(streamed, linger_timeout=20), server)
        await client.send_all(b"GET / HTTP/1.0\r\n\r\n")
        received = bytearray()
        while data := await client.receive_some(65536):
            received += data
        ended = trio.current_time()
    assert received.endswith(b"\r\n\r\n" + BODY)
    assert ended < 1, "the body's end waited for the lingering close"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (scripts/test installs it as root)")
async def test_curl_reads_a_close_delimited_body_over_tls_whole(certificates: Certificates, nursery) -> None:
    port = await serve_https(nursery, HTTPChannel(streamed, linger_timeout=20), certificates.server_context())
    ca = str(certificates.directory / "ca.pem")
    result = await trio.run_process(
        ["curl", "--silent", "--show-error", "--http1.0", "--cacert", ca, f"https://127.0.0.1:{port}/"],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == BODY


async def test_unread_upload_over_tls_still_gets_whole_response(certificates: Certificates, nursery) -> None:
    """The seed's testLingeringClose over TLS: the client goes on uploading after the answer;
    what it sends after the server's close_notify is swallowed, not answered with a reset."""

    async def answer_without_reading(request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, b"not reading that")

    port = await serve_https(nursery, HTTPChannel(answer_without_reading), certificates.server_context())
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    client = trio.SSLStream(tcp, certificates.client_context(), server_hostname="127.0.0.1")
    body = b"u" * 1_000_000
    received = bytearray()

    async def upload() -> None:
        await client.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        with trio.move_on_after(10):
            try:
                await client.send_all(body)
            except trio.BrokenResourceError:
                pass

    async with trio.open_nursery() as inner:
        inner.start_soon(upload)
        try:
            while data := await client.receive_some(65536):
                received += data
        except trio.BrokenResourceError:
            pass
        inner.cancel_scope.cancel()
    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.endswith(b"\r\n\r\nnot reading that")
