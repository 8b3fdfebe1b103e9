"""Client certificates, with trustme's: a server made by ``tls_context`` asks for none, for an
optional one or for a required one, and a client presents one from the server's CA (Alice),
from a stranger CA (Mallory) or none; checked with httpx and curl over loopback sockets."""

from __future__ import annotations

import json
import logging
import shutil
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trustme
from _tls import Certificates, serve_https, subject

from trio_httpchannel import HTTPChannel, Request, Response
from trio_httpchannel.server import TLSConfigError, tls_context

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(
    CURL is None, reason="curl is not installed (scripts/test installs it with apt-get when run as root)"
)


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates(tmp_path)


async def who(request: Request) -> Response:
    """Answers with the client certificate's name and how many certificates came."""
    tls = request.tls
    assert tls is not None
    return Response(200, [], json.dumps([tls.client_cert_name, len(tls.client_cert_chain)]).encode())


async def serve(nursery: trio.Nursery, certificates: Certificates, cert_reqs: ssl.VerifyMode) -> str:
    context = tls_context(
        str(certificates.server_cert),
        str(certificates.server_key),
        ca_certs=str(certificates.ca_file),
        cert_reqs=cert_reqs,
    )
    port = await serve_https(nursery, HTTPChannel(who), context)
    return f"https://127.0.0.1:{port}/"


async def get(url: str, certificates: Certificates, certificate: trustme.LeafCert | None) -> Any:
    async with httpx.AsyncClient(verify=certificates.client_context(certificate)) as client:
        return (await client.get(url)).json()


async def handshake_failure(caplog: pytest.LogCaptureFixture) -> str:
    """The one debug line the server logged for a failed handshake."""
    with trio.fail_after(5):
        while not (lines := [r for r in caplog.records if "TLS handshake" in r.getMessage()]):
            await trio.sleep(0.01)
    (line,) = lines
    assert line.levelno == logging.DEBUG and line.exc_info is None
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []
    return line.getMessage()


@pytest.mark.parametrize("cert_reqs", [ssl.CERT_REQUIRED, ssl.CERT_OPTIONAL])
async def test_a_client_certificate_from_the_ca_is_accepted_and_named(nursery, certificates, cert_reqs):
    url = await serve(nursery, certificates, cert_reqs)
    assert await get(url, certificates, certificates.alice) == [subject(certificates.alice), 1]


async def test_a_missing_certificate_fails_the_handshake_when_required(nursery, certificates, caplog):
    caplog.set_level(logging.DEBUG, "trio_httpchannel")
    url = await serve(nursery, certificates, ssl.CERT_REQUIRED)
    with pytest.raises(httpx.TransportError):
        await get(url, certificates, None)
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in await handshake_failure(caplog)


async def test_a_missing_certificate_is_served_without_a_name_when_optional(nursery, certificates):
    url = await serve(nursery, certificates, ssl.CERT_OPTIONAL)
    assert await get(url, certificates, None) == [None, 0]


@pytest.mark.parametrize("cert_reqs", [ssl.CERT_REQUIRED, ssl.CERT_OPTIONAL])
async def test_a_certificate_from_another_ca_fails_the_handshake(nursery, certificates, caplog, cert_reqs):
    caplog.set_level(logging.DEBUG, "trio_httpchannel")
    url = await serve(nursery, certificates, cert_reqs)
    with pytest.raises(httpx.TransportError):
        await get(url, certificates, certificates.mallory)
    assert "CERTIFICATE_VERIFY_FAILED" in await handshake_failure(caplog)


async def test_no_certificate_is_asked_by_default(nursery, certificates):
    context = tls_context(str(certificates.server_cert), str(certificates.server_key))
    port = await serve_https(nursery, HTTPChannel(who), context)
    assert await get(f"https://127.0.0.1:{port}/", certificates, certificates.alice) == [None, 0]


@needs_curl
async def test_curl_with_cert_is_served_and_without_is_refused_when_required(nursery, certificates):
    assert CURL is not None
    url = await serve(nursery, certificates, ssl.CERT_REQUIRED)
    cert, key = certificates.files(certificates.alice)
    curl = [CURL, "-s", "--cacert", str(certificates.ca_file), url]
    served = await trio.run_process([*curl, "--cert", cert, "--key", key], capture_stdout=True, check=False)
    assert json.loads(served.stdout) == [subject(certificates.alice), 1]
    refused = await trio.run_process(curl, capture_stdout=True, check=False)
    assert refused.returncode != 0 and refused.stdout == b""


# What tls_context refuses, and says ---------------------------------------------------------------


def test_an_encrypted_key_loads_with_its_password(certificates):
    key = certificates.encrypted_key(b"s3cret")
    assert isinstance(tls_context(str(certificates.server_cert), key, password="s3cret"), ssl.SSLContext)


def test_an_encrypted_key_without_password_asks_for_it_instead_of_prompting(certificates):
    key = certificates.encrypted_key(b"s3cret")
    with pytest.raises(TLSConfigError, match="is encrypted: give its password with --ssl-keyfile-password"):
        tls_context(str(certificates.server_cert), key)


def test_a_wrong_password_is_named(certificates):
    key = certificates.encrypted_key(b"s3cret")
    with pytest.raises(TLSConfigError, match="--ssl-keyfile-password does not decrypt the private key"):
        tls_context(str(certificates.server_cert), key, password="guess")


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"ca_certs": "missing.pem"}, r"cannot load the CA certificates \(--ssl-ca-certs\) missing.pem: No such file"),
        ({"ca_certs": "KEY"}, r"cannot load the CA certificates .*NO_CERTIFICATE_OR_CRL_FOUND"),
        ({"ciphers": "NO-SUCH-CIPHER"}, r"--ssl-ciphers 'NO-SUCH-CIPHER' selects no cipher suite"),
        ({"cert_reqs": ssl.CERT_REQUIRED}, r"--ssl-cert-reqs 2 verifies client certificates: .* --ssl-ca-certs"),
        ({"keyfile": "CA"}, r"cannot load the TLS certificate .* and its key"),
    ],
)
def test_tls_settings_that_cannot_work_are_refused_saying_why(certificates, options, complaint):
    files = {"KEY": str(certificates.server_key), "CA": str(certificates.ca_file)}
    options = {name: files.get(value, value) if isinstance(value, str) else value for name, value in options.items()}
    with pytest.raises(TLSConfigError, match=complaint):
        tls_context(str(certificates.server_cert), **{"keyfile": str(certificates.server_key), **options})
