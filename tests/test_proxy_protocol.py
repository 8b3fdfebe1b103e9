"""The PROXY protocol at the server, over real loopback sockets: the header's addresses become
the request's, its TLVs reach the handler, and a connection without a proper header from a
trusted peer is closed without a word. The headers are written here as raw bytes; HAProxy and
nginx write real ones in ``tests/test_balancers.py``."""

from __future__ import annotations

import logging
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
import trustme
from conftest import GET, MemoryListener, RawClient, RawClientFactory, connect_tcp, inet, tlv, v2

from trio_httpchannel import HTTPChannel, Request, Response
from trio_httpchannel.asgi import ASGIHandler
from trio_httpchannel.server import Server
from trio_httpchannel.server.proxy_headers import TrustedProxies
from trio_httpchannel.server.proxy_protocol import ProxyProtocol, proxy_header

V1 = b"PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\r\n"


async def who(request: Request) -> Response:
    """The request's addresses and scheme, and the ALPN and authority TLVs of its connection."""
    header = proxy_header()
    tlvs = "-" if header is None else f"{header.alpn!r} {header.authority}"
    return Response(200, [], f"{request.client} {request.server} {request.scheme} {tlvs}".encode())


@pytest.fixture
def proxied(nursery: trio.Nursery) -> Callable[..., Awaitable[RawClientFactory]]:
    """``connect = await proxied(mode, trusted="127.0.0.1", handler=who, **server_options)``
    runs a Server reading the PROXY protocol on a loopback port."""

    async def start(mode: str, trusted: str = "127.0.0.1", handler: Any = who, **options: Any) -> RawClientFactory:
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        server = Server(handler, proxy_protocol=ProxyProtocol(mode, TrustedProxies(trusted)), **options)
        await nursery.start(server.serve_listeners, [listener])
        port = listener.socket.getsockname()[1]

        async def connect() -> RawClient:
            return await connect_tcp(port)

        return connect

    return start


async def ask(client: RawClient, data: bytes) -> bytes:
    await client.send(data)
    with trio.fail_after(10):
        return (await client.read_response()).body


async def test_v1_header_gives_the_request_its_client_and_server(proxied: Any) -> None:
    client = await (await proxied("v1"))()
    assert await ask(client, V1 + GET) == b"('203.0.113.7', 51000) ('198.51.100.1', 443) http None None"


async def test_v2_header_gives_the_request_its_client_and_server(proxied: Any) -> None:
    client = await (await proxied("v2"))()
    assert (await ask(client, v2(payload=inet()) + GET)).startswith(
        b"('203.0.113.7', 51000) ('198.51.100.1', 443) http"
    )


async def test_auto_accepts_either_version(proxied: Any) -> None:
    connect = await proxied("auto")
    first, second = await connect(), await connect()
    assert (await ask(first, V1 + GET)).startswith(b"('203.0.113.7', 51000)")
    assert (await ask(second, v2(payload=inet("203.0.113.8")) + GET)).startswith(b"('203.0.113.8', 51000)")


async def test_every_request_of_a_kept_alive_connection_has_the_header_s_client(proxied: Any) -> None:
    client = await (await proxied("v1"))()
    await client.send(V1)
    for _ in range(3):
        assert (await ask(client, GET)).startswith(b"('203.0.113.7', 51000)")


async def test_requests_pipelined_in_the_header_s_own_write_are_all_answered(proxied: Any) -> None:
    client = await (await proxied("v1"))()
    await client.send(V1 + GET * 3)
    with trio.fail_after(10):
        bodies = [(await client.read_response()).body for _ in range(3)]
    assert all(body.startswith(b"('203.0.113.7', 51000)") for body in bodies)


async def test_a_header_sent_byte_by_byte_is_read(proxied: Any) -> None:
    client = await (await proxied("auto"))()
    for byte in v2(payload=inet()):
        await client.send(bytes([byte]))
    assert (await ask(client, GET)).startswith(b"('203.0.113.7', 51000)")


async def test_local_command_keeps_the_socket_s_addresses(proxied: Any) -> None:
    client = await (await proxied("v2"))()
    body = await ask(client, v2(command=0, payload=inet()) + GET)
    assert body.startswith(b"('127.0.0.1', ") and b"203.0.113.7" not in body


async def test_v1_unknown_keeps_the_socket_s_addresses(proxied: Any) -> None:
    client = await (await proxied("v1"))()
    assert (await ask(client, b"PROXY UNKNOWN\r\n" + GET)).startswith(b"('127.0.0.1', ")


async def test_v2_tlvs_reach_the_handler(proxied: Any) -> None:
    client = await (await proxied("v2"))()
    header = v2(payload=inet() + tlv(0x01, b"http/1.1") + tlv(0x02, b"example.com"))
    assert (await ask(client, header + GET)).endswith(b"http b'http/1.1' example.com")


async def test_a_tls_client_of_the_balancer_makes_the_scheme_https(proxied: Any) -> None:
    client = await (await proxied("v2"))()
    header = v2(payload=inet() + tlv(0x20, struct.pack("!BI", 0x01, 0) + tlv(0x21, b"TLSv1.3")))
    assert b" https " in await ask(client, header + GET)


async def test_the_asgi_scope_has_the_header_s_addresses(proxied: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"{scope['client']} {scope['server']}".encode()})

    client = await (await proxied("v1", handler=ASGIHandler(app)))()
    assert await ask(client, V1 + GET) == b"('203.0.113.7', 51000) ('198.51.100.1', 443)"


async def test_the_header_comes_before_tls(proxied: Any) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    raw = await (await proxied("v1", ssl_context=server_context))()
    await raw.send(V1)
    tls = RawClient(trio.SSLStream(raw.stream, client_context, server_hostname="127.0.0.1"))
    assert await ask(tls, GET) == b"('203.0.113.7', 51000) ('198.51.100.1', 443) https None None"


# Refused: closed without an answer ----------------------------------------------------------------


async def assert_closed_without_answer(client: RawClient) -> None:
    with trio.fail_after(10):
        try:
            assert await client.read_to_eof() == b""
        except trio.BrokenResourceError:
            pass  # a reset: we closed with the client's bytes unread, which is as silent


async def test_a_connection_without_a_header_is_closed_without_an_answer(
    proxied: Any, caplog: pytest.LogCaptureFixture
) -> None:
    connect = await proxied("auto")
    with caplog.at_level(logging.DEBUG, logger="trio_httpchannel"):
        client = await connect()
        await client.send(GET)
        await assert_closed_without_answer(client)
    assert "does not start with a PROXY protocol version 1 or version 2 header" in caplog.text


async def test_a_malformed_header_is_closed_without_an_answer(proxied: Any) -> None:
    client = await (await proxied("v1"))()
    await client.send(b"PROXY TCP4 203.0.113.7 198.51.100.1 99999 443\r\n" + GET)
    await assert_closed_without_answer(client)


async def test_a_version_not_expected_is_closed_without_an_answer(proxied: Any) -> None:
    client = await (await proxied("v1"))()
    await client.send(v2(payload=inet()) + GET)
    await assert_closed_without_answer(client)


async def test_a_connection_that_ends_inside_its_header_is_closed(proxied: Any) -> None:
    client = await (await proxied("v1"))()
    await client.send(V1[:20])
    await client.send_eof()
    await assert_closed_without_answer(client)


async def test_an_untrusted_peer_is_closed_whatever_it_sends(proxied: Any, caplog: pytest.LogCaptureFixture) -> None:
    connect = await proxied("v1", trusted="10.0.0.0/8")
    with caplog.at_level(logging.DEBUG, logger="trio_httpchannel"):
        client = await connect()
        await client.send(V1 + GET)
        await assert_closed_without_answer(client)
    assert "not a trusted proxy" in caplog.text


async def test_a_header_slower_than_header_timeout_is_closed(nursery: trio.Nursery, autojump_clock: object) -> None:
    listener = MemoryListener()
    channel = HTTPChannel(who, header_timeout=5)
    server = Server(channel, proxy_protocol=ProxyProtocol("v1", TrustedProxies("127.0.0.1")))
    await nursery.start(server.serve_listeners, [listener])
    client = await listener.connect()
    await client.send(V1[:10])
    started = trio.current_time()
    assert await client.read_to_eof() == b""
    assert trio.current_time() - started == pytest.approx(5)


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="proxy_protocol must be one of v1, v2, auto"):
        ProxyProtocol("v3", TrustedProxies("*"))
