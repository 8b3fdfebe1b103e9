"""What a handler and an ASGI app learn of a TLS connection: ``Request.tls`` and the ASGI ``tls``
extension (version, cipher suite, the server's certificate, the client's and its name), in the
HTTP/1.1, HTTP/2 and WebSocket scopes over TLS only; checked with httpx and websockets."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from _tls import Certificates, pem, serve_https, subject
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from websockets.trio.client import connect

from trio_httpchannel import HTTPChannel, Request, Response, TLSInfo
from trio_httpchannel._tls import rfc4514_name
from trio_httpchannel.asgi import ASGIHandler
from trio_httpchannel.server import tls_context

TLS_1_3_SUITES = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
}


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates(tmp_path)


@pytest.fixture
def context(certificates: Certificates) -> ssl.SSLContext:
    """The server's context, asking for a client certificate from the tests' CA."""
    return tls_context(
        str(certificates.server_cert),
        str(certificates.server_key),
        ca_certs=str(certificates.ca_file),
        cert_reqs=ssl.CERT_OPTIONAL,
    )


async def scope_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers an HTTP request, or accepts a WebSocket and sends, the scope's extensions."""
    extensions = json.dumps(scope.get("extensions") or {})
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": extensions})
        await send({"type": "websocket.close"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": extensions.encode()})


class Seen:
    """A native handler noting each request's ``tls``."""

    def __init__(self) -> None:
        self.tls: list[TLSInfo | None] = []

    async def __call__(self, request: Request) -> Response:
        self.tls.append(request.tls)
        return Response(200, [], b"ok")

    @property
    def last(self) -> TLSInfo:
        (tls,) = self.tls
        assert tls is not None
        return tls


async def test_a_native_handler_sees_version_suite_and_certificates(nursery, certificates, context):
    seen = Seen()
    port = await serve_https(nursery, HTTPChannel(seen), context)
    client = certificates.client_context(certificates.alice)
    async with httpx.AsyncClient(verify=client) as http:
        assert (await http.get(f"https://127.0.0.1:{port}/")).status_code == 200
    tls = seen.last
    assert tls.tls_version == 0x0304 and tls.cipher_suite in TLS_1_3_SUITES.values()
    assert tls.server_cert == pem(certificates.server)
    assert tls.client_cert_chain == (pem(certificates.alice),)
    assert tls.client_cert_name == subject(certificates.alice)


async def test_tls_1_2_reports_its_version_and_the_suites_iana_number(nursery, certificates, context):
    seen = Seen()
    port = await serve_https(nursery, HTTPChannel(seen), context)
    client = certificates.client_context()
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    async with httpx.AsyncClient(verify=client) as http:
        assert (await http.get(f"https://127.0.0.1:{port}/")).status_code == 200
    tls = seen.last
    assert (tls.tls_version, tls.cipher_suite) == (0x0303, 0xC02B)
    assert (tls.client_cert_chain, tls.client_cert_name) == ((), None)


@pytest.mark.parametrize("http2", [False, True])
async def test_the_asgi_scope_carries_the_tls_extension(nursery, certificates, context, http2):
    port = await serve_https(nursery, HTTPChannel(ASGIHandler(scope_app)), context)
    async with httpx.AsyncClient(verify=certificates.client_context(certificates.alice), http2=http2) as http:
        response = await http.get(f"https://127.0.0.1:{port}/")
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    tls = response.json()["tls"]
    assert tls == {
        "server_cert": pem(certificates.server),
        "client_cert_chain": [pem(certificates.alice)],
        "client_cert_name": subject(certificates.alice),
        "client_cert_error": None,
        "tls_version": 0x0304,
        "cipher_suite": tls["cipher_suite"],
    }
    assert tls["cipher_suite"] in TLS_1_3_SUITES.values()


async def test_the_websocket_scope_carries_the_tls_extension(nursery, certificates, context):
    port = await serve_https(nursery, HTTPChannel(ASGIHandler(scope_app), ws_ping_interval=None), context)
    client = certificates.client_context(certificates.alice)
    async with connect(f"wss://127.0.0.1:{port}/", ssl=client, proxy=None, ping_interval=None) as ws:
        tls = json.loads(await ws.recv())["tls"]
    assert tls["client_cert_name"] == subject(certificates.alice) and tls["tls_version"] == 0x0304


async def test_cleartext_has_no_tls_extension_and_no_request_tls(nursery):
    channel = HTTPChannel(ASGIHandler(scope_app))
    listeners = await nursery.start(trio.serve_tcp, channel, 0)
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/")
    assert "tls" not in response.json()
    seen = Seen()
    plain = await nursery.start(trio.serve_tcp, HTTPChannel(seen), 0)
    async with httpx.AsyncClient() as http:
        await http.get(f"http://127.0.0.1:{plain[0].socket.getsockname()[1]}/")
    assert seen.tls == [None]


async def test_server_cert_is_none_for_a_context_not_made_by_tls_context(nursery, certificates):
    seen = Seen()
    port = await serve_https(nursery, HTTPChannel(seen), certificates.server_context())
    async with httpx.AsyncClient(verify=certificates.client_context()) as http:
        await http.get(f"https://127.0.0.1:{port}/")
    assert seen.last.server_cert is None and seen.last.tls_version == 0x0304


@pytest.mark.parametrize(
    ("subject_rdns", "name"),
    [
        (
            ((("countryName", "FR"),), (("organizationName", "Example"),), (("commonName", "alice"),)),
            "CN=alice,O=Example,C=FR",
        ),
        (((("commonName", "a+b, c"),),), r"CN=a\+b\, c"),
        (((("commonName", " #lead"),),), r"CN=\ #lead"),
        (((("commonName", "trail "),),), r"CN=trail\ "),
        (((("commonName", 'q"<>;\\'),),), r"CN=q\"\<\>\;\\"),
        (((("emailAddress", "a@example.org"), ("commonName", "a")),), "1.2.840.113549.1.9.1=a@example.org+CN=a"),
        (((("1.2.3.4", "x"),),), "1.2.3.4=x"),
    ],
)
def test_a_client_certificates_name_is_written_as_rfc_4514_says(subject_rdns, name):
    assert rfc4514_name(subject_rdns) == name


async def test_a_starlette_endpoint_reads_the_client_certificate_from_the_scope(nursery, certificates, context):
    async def whoami(request: StarletteRequest) -> PlainTextResponse:
        tls = request.scope["extensions"]["tls"]
        return PlainTextResponse(f"{tls['client_cert_name']} {tls['tls_version']:#06x}")

    app = Starlette(routes=[Route("/", whoami)])
    port = await serve_https(nursery, HTTPChannel(ASGIHandler(app)), context)
    async with httpx.AsyncClient(verify=certificates.client_context(certificates.alice)) as http:
        response = await http.get(f"https://127.0.0.1:{port}/")
    assert response.text == f"{subject(certificates.alice)} 0x0304"
