"""The command line's TLS options, named as Uvicorn names them (``--ssl-certfile``,
``--ssl-keyfile``, ``--ssl-keyfile-password``, ``--ssl-ca-certs``, ``--ssl-cert-reqs``,
``--ssl-ciphers``), from the command line or the environment, with trustme's certificates."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from _raw_client import ask
from _tls import Certificates, subject
from cli_apps.harness import Start, cli  # noqa: F401 (cli is a fixture)


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates(tmp_path)


async def test_a_required_client_certificate_is_named_to_the_app(cli: Start, certificates: Certificates) -> None:
    server = await cli(
        "apps:client_cert",
        "--ssl-certfile",
        str(certificates.server_cert),
        "--ssl-keyfile",
        str(certificates.server_key),
        "--ssl-ca-certs",
        str(certificates.ca_file),
        "--ssl-cert-reqs",
        "2",
    )
    assert (await server.started()).group("scheme") == "https"
    context = certificates.client_context(certificates.alice)
    response = await ask(trio.SSLStream(await server.open(), context, server_hostname="127.0.0.1"))
    assert (response.status, response.body) == (200, f"client {subject(certificates.alice)}".encode())


async def test_the_tls_options_come_from_the_environment_too(cli: Start, certificates: Certificates) -> None:
    env = {
        "TRIO_HTTPCHANNEL_CERTFILE": str(certificates.server_cert),
        "TRIO_HTTPCHANNEL_KEYFILE": str(certificates.server_key),
        "TRIO_HTTPCHANNEL_SSL_CA_CERTS": str(certificates.ca_file),
        "TRIO_HTTPCHANNEL_SSL_CERT_REQS": "2",
        "TRIO_HTTPCHANNEL_SSL_CIPHERS": "ECDHE+AESGCM",
    }
    server = await cli("apps:client_cert", env=env)
    refused = trio.SSLStream(await server.open(), certificates.client_context(), server_hostname="127.0.0.1")
    with pytest.raises(trio.BrokenResourceError):
        await ask(refused)
    served = trio.SSLStream(
        await server.open(), certificates.client_context(certificates.alice), server_hostname="127.0.0.1"
    )
    assert (await ask(served)).status == 200


async def test_an_encrypted_key_is_served_with_its_password(cli: Start, certificates: Certificates) -> None:
    key = certificates.encrypted_key(b"s3cret")
    args = ["--ssl-certfile", str(certificates.server_cert), "--ssl-keyfile", key]
    server = await cli("apps:client_cert", *args, "--ssl-keyfile-password", "s3cret")
    served = trio.SSLStream(await server.open(), certificates.client_context(), server_hostname="127.0.0.1")
    assert (await ask(served)).body == b"client -"


async def test_an_encrypted_key_without_its_password_is_one_line_and_exit_1(
    cli: Start, certificates: Certificates
) -> None:
    key = certificates.encrypted_key(b"s3cret")
    server = await cli("apps:native", "--ssl-certfile", str(certificates.server_cert), "--ssl-keyfile", key, wait=False)
    assert await server.exit_status() == 1
    assert server.stderr.lines == [
        f"trio-httpchannel: error: the private key {key} is encrypted: give its password with --ssl-keyfile-password"
    ]


async def test_a_tls_mistake_is_told_once_before_workers_start(cli: Start, certificates: Certificates) -> None:
    files = ["--ssl-certfile", str(certificates.server_cert), "--ssl-keyfile", str(certificates.server_key)]
    args = [*files, "--ssl-ciphers", "NO-SUCH-CIPHER", "--workers", "2"]
    server = await cli("apps:native", *args, wait=False)
    assert await server.exit_status() == 1
    (line,) = server.stderr.lines
    assert "--ssl-ciphers 'NO-SUCH-CIPHER' selects no cipher suite" in line
