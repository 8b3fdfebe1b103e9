"""TLS for the tests, with trustme's throwaway certificates: a CA issuing the server's and a
client's certificate, a stranger CA the server does not trust issuing another client's, their
PEM files, clients' contexts, and a :class:`Server` serving HTTPS on a loopback port."""

from __future__ import annotations

import functools
import ssl
from pathlib import Path
from typing import Any

import trio
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trio_httpchannel import HTTPChannel, Server
from trio_httpchannel.http2 import ALPN_PROTOCOLS


class Certificates:
    """The certificates of a test, written under ``directory``: ``ca`` issues the server's
    (``server_cert``/``server_key``) and Alice's (``alice``); ``stranger`` issues Mallory's.
    ``ca_file`` is the CA the server trusts for client certificates."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.stranger = trustme.CA()
        self.server = self.ca.issue_cert("127.0.0.1")
        self.alice = self.ca.issue_cert("alice@example.org", common_name="alice")
        self.mallory = self.stranger.issue_cert("mallory@example.org", common_name="mallory")
        self.server_cert = directory / "server.pem"
        self.server_key = directory / "server.key"
        self.ca_file = directory / "ca.pem"
        self.server.cert_chain_pems[0].write_to_path(str(self.server_cert))
        self.server.private_key_pem.write_to_path(str(self.server_key))
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.directory = directory

    def server_context(self) -> ssl.SSLContext:
        """The server's context as the command line makes one: TLS 1.2 at least, ALPN h2 then
        http/1.1, no client certificate asked."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(context)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(ALPN_PROTOCOLS)
        return context

    def client_context(self, certificate: trustme.LeafCert | None = None, **options: Any) -> ssl.SSLContext:
        """A client's context trusting the server, presenting ``certificate`` when given."""
        context = ssl.create_default_context(**options)
        self.ca.configure_trust(context)
        if certificate is not None:
            certificate.configure_cert(context)
        return context

    def encrypted_key(self, password: bytes) -> str:
        """The server's key encrypted with ``password``, as a PEM file."""
        key = serialization.load_pem_private_key(self.server.private_key_pem.bytes(), None)
        path = self.directory / "encrypted.key"
        encryption = serialization.BestAvailableEncryption(password)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
        return str(path)

    def files(self, certificate: trustme.LeafCert) -> tuple[str, str]:
        """``certificate`` and its key as PEM files (for curl's ``--cert`` and ``--key``)."""
        name = certificate.cert_chain_pems[0].bytes()[-40:-30].hex()
        cert, key = self.directory / f"{name}.pem", self.directory / f"{name}.key"
        certificate.cert_chain_pems[0].write_to_path(str(cert))
        certificate.private_key_pem.write_to_path(str(key))
        return str(cert), str(key)


def pem(certificate: trustme.LeafCert) -> str:
    """``certificate`` as PEM text, as ``ssl.DER_cert_to_PEM_cert`` writes it."""
    return ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(certificate.cert_chain_pems[0].bytes().decode()))


def subject(certificate: trustme.LeafCert) -> str:
    """The subject of ``certificate`` as RFC 4514 writes it, by the cryptography package."""
    return x509.load_pem_x509_certificate(certificate.cert_chain_pems[0].bytes()).subject.rfc4514_string()


async def serve_https(nursery: trio.Nursery, channel: HTTPChannel, context: ssl.SSLContext, **options: Any) -> int:
    """Serve ``channel`` over TLS with ``context`` through :class:`Server` (``options`` are its
    own: ``max_connections``, ``proxy_protocol``); the loopback port."""
    server = Server(channel, ssl_context=context, **options)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    await nursery.start(functools.partial(server.serve_listeners, listeners))
    port: int = listeners[0].socket.getsockname()[1]
    return port
