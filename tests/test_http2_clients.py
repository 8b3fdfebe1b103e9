"""HTTP/2 checked by clients that are not our code, over real sockets: curl (nghttp2) with prior
knowledge and over TLS by ALPN, httpx with ``http2=True``, h2load; and the command line's TLS
context offering h2."""

from __future__ import annotations

import functools
import re
import shutil
import ssl
from pathlib import Path

import httpx
import pytest
import trio
import trustme
from _h2 import H2Client
from cli_apps.harness import Start, cli  # noqa: F401 (cli is a fixture)

from trio_httpchannel import HTTPChannel, Request, Response
from trio_httpchannel.http2 import ALPN_PROTOCOLS

CURL = shutil.which("curl")
H2LOAD = shutil.which("h2load")
needs_curl = pytest.mark.skipif(
    CURL is None, reason="curl is not installed (scripts/test installs it with apt-get when run as root)"
)
needs_h2load = pytest.mark.skipif(
    H2LOAD is None, reason="h2load is not installed (Debian nghttp2-client; scripts/test installs it when root)"
)


async def echo(request: Request) -> Response:
    body = await request.read()
    return Response(
        200,
        {"content-type": "text/plain"},
        f"{request.method} {request.target} {request.http_version} {len(body)}".encode(),
    )


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_context(authority: trustme.CA) -> ssl.SSLContext:
    """A TLS context as the command line makes one: TLS 1.2 at least, ALPN h2 then http/1.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(ALPN_PROTOCOLS)
    return context


async def serve(
    nursery: trio.Nursery, handler, context: ssl.SSLContext | None = None, **settings
) -> tuple[HTTPChannel, int]:
    channel = HTTPChannel(handler, **settings)
    if context is None:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
    else:
        listeners = await nursery.start(
            functools.partial(trio.serve_ssl_over_tcp, channel, 0, context, host="127.0.0.1")
        )
    return channel, listeners[0].transport_listener.socket.getsockname()[1] if context else listeners[
        0
    ].socket.getsockname()[1]


async def curl(*args: str) -> str:
    assert CURL is not None
    with trio.fail_after(60):
        done = await trio.run_process([CURL, "-sS", *args], capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@needs_curl
async def test_curl_with_prior_knowledge_gets_an_http2_answer(nursery):
    _, port = await serve(nursery, echo)
    out = await curl("--http2-prior-knowledge", "-w", " %{http_version}", f"http://127.0.0.1:{port}/a?b=c")
    assert out == "GET /a?b=c 2 0 2"


@needs_curl
async def test_curl_multiplexes_parallel_requests_on_one_tls_connection(nursery, authority, server_context, tmp_path):
    # Over TLS: curl 7.88's prior-knowledge mode fails to reuse a connection for a second
    # request against any server (nghttpd too), with "Error in the HTTP2 framing layer".
    connections = []

    async def handler(request: Request) -> Response:
        connections.append(request.client)
        return await echo(request)

    ca = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca))
    _, port = await serve(nursery, handler, server_context)
    urls = [f"https://127.0.0.1:{port}/{i}" for i in range(5)]
    out = await curl("--http2", "--cacert", str(ca), "--parallel", *urls)
    assert sorted(re.findall(r"GET /(\d) 2", out)) == [str(i) for i in range(5)]
    assert len(set(connections)) == 1


@needs_curl
async def test_curl_uploads_a_body_with_prior_knowledge(nursery, tmp_path: Path):
    upload = tmp_path / "upload"
    upload.write_bytes(b"u" * 3_000_000)
    _, port = await serve(nursery, echo)
    out = await curl("--http2-prior-knowledge", "--data-binary", f"@{upload}", f"http://127.0.0.1:{port}/up")
    assert out == "POST /up 2 3000000"


@needs_curl
async def test_curl_negotiates_http2_over_tls_by_alpn(nursery, authority, server_context, tmp_path: Path):
    ca = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca))
    _, port = await serve(nursery, echo, server_context)
    out = await curl("--http2", "--cacert", str(ca), "-w", " %{http_version}", f"https://127.0.0.1:{port}/tls")
    assert out == "GET /tls 2 0 2"


@needs_curl
async def test_a_tls_client_offering_only_http11_is_served_http11(nursery, authority, server_context, tmp_path: Path):
    ca = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca))
    _, port = await serve(nursery, echo, server_context)
    out = await curl("--http1.1", "--cacert", str(ca), "-w", " %{http_version}", f"https://127.0.0.1:{port}/old")
    assert out == "GET /old 1.1 0 1.1"


async def test_httpx_over_tls_speaks_http2_both_ways(nursery, authority, server_context):
    _, port = await serve(nursery, echo, server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    async with httpx.AsyncClient(http2=True, verify=client_context) as client:
        responses = [await client.post(f"https://127.0.0.1:{port}/p{i}", content=b"q" * 100_000) for i in range(3)]
    assert {response.http_version for response in responses} == {"HTTP/2"}
    assert [response.text for response in responses] == [f"POST /p{i} 2 100000" for i in range(3)]


async def test_httpx_with_prior_knowledge_streams_a_response(nursery):
    async def chunks():
        for index in range(100):
            yield b"%03d," % index

    async def handler(request: Request) -> Response:
        return Response(200, body=chunks())

    _, port = await serve(nursery, handler)
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        async with client.stream("GET", f"http://127.0.0.1:{port}/") as response:
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert response.http_version == "HTTP/2"
    assert body == b"".join(b"%03d," % i for i in range(100))


@needs_h2load
async def test_h2load_gets_every_request_answered(nursery):
    _, port = await serve(nursery, echo)
    assert H2LOAD is not None
    with trio.fail_after(120):
        done = await trio.run_process(
            [H2LOAD, "-n", "2000", "-c", "4", "-m", "50", f"http://127.0.0.1:{port}/"], capture_stdout=True, check=False
        )
    out = done.stdout.decode()
    assert done.returncode == 0, out
    assert "2000 succeeded, 0 failed, 0 errored" in out, out


@needs_h2load
async def test_h2load_with_as_many_streams_as_the_limit_gets_every_request_answered(nursery):
    _, port = await serve(nursery, echo, h2_max_concurrent_streams=100)
    assert H2LOAD is not None
    with trio.fail_after(120):
        done = await trio.run_process(
            [H2LOAD, "-n", "2000", "-c", "2", "-m", "100", f"http://127.0.0.1:{port}/"],
            capture_stdout=True,
            check=False,
        )
    out = done.stdout.decode()
    assert "2000 succeeded, 0 failed, 0 errored" in out, out


async def test_the_command_lines_tls_context_offers_h2(cli: Start, authority, tmp_path: Path) -> None:  # noqa: F811
    certificate = authority.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(str(certfile))
    certificate.private_key_pem.write_to_path(str(keyfile))
    server = await cli("apps:native", "--certfile", str(certfile), "--keyfile", str(keyfile))
    await server.started()
    context = ssl.create_default_context()
    authority.configure_trust(context)
    context.set_alpn_protocols(["h2"])
    stream = trio.SSLStream(await server.open(), context, server_hostname="127.0.0.1")
    await stream.do_handshake()
    assert stream.selected_alpn_protocol() == "h2"
    client = H2Client(stream)
    await client.start()
    with trio.fail_after(30):
        response = await client.get("/")
    assert (response.status, bytes(response.body)) == (200, b"native 127.0.0.1 https")


@needs_curl
async def test_the_access_log_has_a_line_for_each_http2_response(cli: Start) -> None:  # noqa: F811
    server = await cli("apps:native")
    await server.started()
    await curl("--http2-prior-knowledge", "-o", "/dev/null", f"http://127.0.0.1:{server.port}/logged")
    line = await server.stdout.wait_for(r'"GET /logged HTTP/2" 200 \d+')
    assert line.string.startswith("127.0.0.1 - - [")
    assert "cut-short" not in line.string
