"""The opening of a TLS connection: plain HTTP sent to the TLS port is answered 400 saying the
port speaks HTTPS (as nginx does), a handshake that stalls is closed at ``header_timeout``
(not the idle ``timeout``), and a handshake that fails is one debug line, never a traceback."""

from __future__ import annotations

import logging
import shutil
import ssl
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing
from _raw_client import read_to_eof
from _tls import Certificates, serve_https
from conftest import hello

from trio_httpchannel import HTTPChannel, ResponseRecord
from trio_httpchannel.server import TrustedProxies
from trio_httpchannel.server.proxy_protocol import ProxyProtocol

CURL = shutil.which("curl")
GET = b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates(tmp_path)


@pytest.fixture
def context(certificates: Certificates) -> ssl.SSLContext:
    return certificates.server_context()


def quiet(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the server logged above debug level, or with a traceback."""
    return [
        r for r in caplog.records if r.name.startswith("trio_httpchannel") and (r.levelno > logging.DEBUG or r.exc_info)
    ]


async def test_plain_http_on_a_tls_port_is_answered_400_saying_it_speaks_https(nursery, context, caplog):
    caplog.set_level(logging.DEBUG, "trio_httpchannel")
    records: list[ResponseRecord] = []
    port = await serve_https(nursery, HTTPChannel(hello, on_response=records.append), context)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(GET)
    answer = await read_to_eof(stream)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"\r\nConnection: close" in head
    assert body == b"400 Bad Request: this port speaks HTTPS: use an https:// URL\n"
    assert any("plain HTTP from 127.0.0.1" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
    assert quiet(caplog) == []
    await stream.aclose()
    with trio.fail_after(5):
        while not records:
            await trio.sleep(0.01)
    assert (records[0].status, records[0].request, records[0].complete) == (400, None, True)


@pytest.mark.skipif(
    CURL is None, reason="curl is not installed (scripts/test installs it with apt-get when run as root)"
)
async def test_curl_asking_http_of_a_tls_port_reads_the_400(nursery, context):
    assert CURL is not None
    port = await serve_https(nursery, HTTPChannel(hello), context)
    result = await trio.run_process(
        [CURL, "-s", "-w", "%{http_code}", f"http://127.0.0.1:{port}/"], capture_stdout=True, check=False
    )
    assert result.stdout.decode().splitlines() == [
        "400 Bad Request: this port speaks HTTPS: use an https:// URL",
        "400",
    ]


async def test_plain_http_after_a_proxy_protocol_header_is_answered_400_too(nursery, context):
    proxy = ProxyProtocol("v1", TrustedProxies("127.0.0.1"))
    port = await serve_https(nursery, HTTPChannel(hello), context, proxy_protocol=proxy)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 443\r\n" + GET)
    assert (await read_to_eof(stream)).startswith(b"HTTP/1.1 400 Bad Request\r\n")


async def test_https_still_works_beside_plain_http_on_the_same_port(nursery, context, certificates):
    port = await serve_https(nursery, HTTPChannel(hello), context)
    plain = await trio.open_tcp_stream("127.0.0.1", port)
    await plain.send_all(GET)
    async with httpx.AsyncClient(verify=certificates.client_context()) as client:
        response = await client.get(f"https://127.0.0.1:{port}/")
    assert (response.status_code, response.text) == (200, "hello")
    assert (await read_to_eof(plain)).startswith(b"HTTP/1.1 400")


async def test_a_handshake_with_an_untrusting_client_fails_in_one_debug_line(nursery, context, caplog):
    caplog.set_level(logging.DEBUG, "trio_httpchannel")
    port = await serve_https(nursery, HTTPChannel(hello), context)
    stranger = trustme_client_context_trusting_nobody()
    stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), stranger, server_hostname="127.0.0.1")
    with pytest.raises(trio.BrokenResourceError):
        await stream.do_handshake()
    await stream.transport_stream.aclose()
    await wait_for_log(caplog, "TLS handshake with 127.0.0.1")
    (line,) = [r for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert line.levelno == logging.DEBUG and "failed" in line.getMessage()
    assert quiet(caplog) == []


@pytest.mark.skipif(
    CURL is None, reason="curl is not installed (scripts/test installs it with apt-get when run as root)"
)
async def test_a_handshake_curl_aborts_is_one_debug_line_with_its_alert(nursery, context, caplog):
    assert CURL is not None
    caplog.set_level(logging.DEBUG, "trio_httpchannel")
    port = await serve_https(nursery, HTTPChannel(hello), context)
    result = await trio.run_process([CURL, "-s", f"https://127.0.0.1:{port}/"], capture_stdout=True, check=False)
    assert result.returncode == 60  # curl: the server's certificate is not trusted
    await wait_for_log(caplog, "TLS handshake with 127.0.0.1")
    (line,) = [r for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert line.levelno == logging.DEBUG and "ALERT_UNKNOWN_CA" in line.getMessage()
    assert quiet(caplog) == []


async def test_bytes_that_are_neither_tls_nor_http_fail_the_handshake_in_one_debug_line(nursery, context, caplog):
    caplog.set_level(logging.DEBUG, "trio_httpchannel")
    port = await serve_https(nursery, HTTPChannel(hello), context)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"\x00\x01\x02\x03 not a TLS record\r\n\r\n")
    assert await read_to_eof(stream) == b""
    await wait_for_log(caplog, "TLS handshake with 127.0.0.1")
    assert [r.levelno for r in caplog.records if "TLS handshake" in r.getMessage()] == [logging.DEBUG]
    assert quiet(caplog) == []


def trustme_client_context_trusting_nobody() -> ssl.SSLContext:
    """A client that trusts no CA the tests' servers use: it aborts the handshake."""
    import trustme

    context = ssl.create_default_context()
    trustme.CA().configure_trust(context)
    return context


async def wait_for_log(caplog: pytest.LogCaptureFixture, text: str) -> None:
    with trio.fail_after(5):
        while not any(text in r.getMessage() for r in caplog.records):
            await trio.sleep(0.01)


# Timers, over memory streams under the MockClock ----------------------------------------------


def client_hello() -> bytes:
    """The first flight of a TLS client: its ClientHello record."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


async def closed_after(nursery: trio.Nursery, context: ssl.SSLContext, first: bytes, **settings: float) -> float:
    """Serve one TLS connection over memory streams whose client sends ``first`` and then
    nothing: the seconds until the server closes it."""
    client, server = trio.testing.memory_stream_pair()
    nursery.start_soon(HTTPChannel(hello, **settings), trio.SSLStream(server, context, server_side=True))
    start = trio.current_time()
    await client.send_all(first)
    while await client.receive_some():
        pass
    return trio.current_time() - start


@pytest.mark.parametrize("h2", [True, False])
async def test_a_client_silent_after_connecting_is_closed_at_header_timeout(nursery, context, autojump_clock, h2):
    assert await closed_after(nursery, context, b"", timeout=100, header_timeout=7, h2=h2) == pytest.approx(7)


@pytest.mark.parametrize("h2", [True, False])
async def test_a_handshake_stalled_in_its_hello_is_closed_at_header_timeout(nursery, context, autojump_clock, h2):
    hello_record = client_hello()
    assert await closed_after(
        nursery, context, hello_record[:20], timeout=100, header_timeout=7, h2=h2
    ) == pytest.approx(7)


async def test_a_stalled_handshake_is_one_debug_line(nursery, context, autojump_clock, caplog):
    caplog.set_level(logging.DEBUG, "trio_httpchannel")
    await closed_after(nursery, context, client_hello()[:20], header_timeout=7)
    messages = [r.getMessage() for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert messages == ["TLS handshake with an unknown peer not done within 7s: closing"]
    assert quiet(caplog) == []


async def test_a_stream_already_through_its_handshake_gets_the_idle_timeout(
    nursery, certificates, context, autojump_clock
):
    client_end, server_end = (trio.SocketStream(sock) for sock in trio.socket.socketpair())
    client = trio.SSLStream(client_end, certificates.client_context(), server_hostname="127.0.0.1")
    server = trio.SSLStream(server_end, context, server_side=True)
    async with trio.open_nursery() as handshakes:
        handshakes.start_soon(client.do_handshake)
        handshakes.start_soon(server.do_handshake)
    nursery.start_soon(HTTPChannel(hello, timeout=100, header_timeout=7), server)
    await trio.sleep(10)
    await client.send_all(GET)
    assert (await client.receive_some()).startswith(b"HTTP/1.1 200 OK\r\n")
