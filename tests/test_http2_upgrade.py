"""Cleartext ``Upgrade: h2c``: a request without a body gets ``101`` and its answer as stream 1,
and the connection goes on in HTTP/2; any other request is served in HTTP/1.1."""

from __future__ import annotations

import shutil

import pytest
import trio

from trio_httpchannel import Request, Response

CURL = shutil.which("curl")


async def echo(request: Request) -> Response:
    body = await request.read()
    return Response(200, body=f"{request.method} {request.target} {request.http_version} {len(body)}".encode())


async def test_an_upgraded_request_is_answered_as_stream_1_then_http2_goes_on(serve_h2):
    server = await serve_h2(echo)
    client = await server.raw_client()
    head = await client.upgrade("/first")
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols")
    first = await client.response(1)
    assert (first.status, bytes(first.body)) == (200, b"GET /first 2 0")
    second = await client.get("/second", method="POST", body=b"12345")
    assert bytes(second.body) == b"POST /second 2 5"


async def test_a_request_with_a_body_asking_for_h2c_is_served_in_http11(serve):
    connect = await serve(echo)
    client = await connect()
    await client.send(
        b"POST /p HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: 3\r\n\r\nabc"
    )
    response = await client.read_response()
    assert (response.status, response.body) == (200, b"POST /p 1.1 3")


@pytest.mark.parametrize("settings", [b"not*base64", b"AAQAgAAAAA"], ids=["not base64", "window over 2^31-1"])
async def test_an_upgrade_with_settings_h2_refuses_is_served_in_http11(serve_h2, settings):
    server = await serve_h2(echo)
    client = await server.raw_client()
    head = await client.upgrade("/x", settings=settings)
    assert head.startswith(b"HTTP/1.1 200 OK")


async def test_with_h2_off_an_upgrade_is_served_in_http11(serve_h2):
    server = await serve_h2(echo, h2=False)
    client = await server.raw_client()
    assert (await client.upgrade("/x")).startswith(b"HTTP/1.1 200 OK")


@pytest.mark.skipif(
    CURL is None, reason="curl is not installed (scripts/test installs it with apt-get when run as root)"
)
async def test_curl_upgrades_to_h2c(serve_h2_tcp):
    server = await serve_h2_tcp(echo)
    port = server.port
    with trio.fail_after(60):
        done = await trio.run_process(
            [CURL, "-sS", "--http2", "-w", " %{http_version}", f"http://127.0.0.1:{port}/up"], capture_stdout=True
        )
    assert done.stdout == b"GET /up 2 0 2"
