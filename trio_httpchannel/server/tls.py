"""The TLS context a server serves HTTPS with, as the command line makes it from Uvicorn's
options: the certificate and its key (``--ssl-certfile``, ``--ssl-keyfile``,
``--ssl-keyfile-password``), client certificates (``--ssl-ca-certs``, ``--ssl-cert-reqs``) and
the TLS 1.2 cipher suites (``--ssl-ciphers``). Every mistake is a :class:`TLSConfigError`
naming the file or the option and what to do, raised when the context is made (before the
server listens), never a handshake failing later."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

from .._tls import remember_server_certificate
from ..http2 import ALPN_PROTOCOLS

__all__ = ["CERT_REQS", "TLSConfigError", "tls_context"]

CERT_REQS = {0: ssl.CERT_NONE, 1: ssl.CERT_OPTIONAL, 2: ssl.CERT_REQUIRED}
"""``--ssl-cert-reqs``' values, as Uvicorn's: 0 asks no client certificate, 1 asks for one and
verifies it if sent, 2 refuses a client without a valid one."""

_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


class TLSConfigError(ValueError):
    """A TLS setting that cannot work, with what to do about it."""


def tls_context(
    certfile: str,
    keyfile: str | None = None,
    *,
    password: str | None = None,
    ca_certs: str | None = None,
    cert_reqs: ssl.VerifyMode = ssl.CERT_NONE,
    ciphers: str | None = None,
    h2: bool = True,
) -> ssl.SSLContext:
    """A server-side context serving ``certfile`` (PEM: the certificate, then its chain; the
    key too unless ``keyfile`` has it; ``password`` decrypts an encrypted key), TLS 1.2 at
    least (HTTP/2 needs it, RFC 9113 section 9.2), offering ``h2`` and ``http/1.1`` by ALPN
    (only ``http/1.1`` without ``h2``). ``cert_reqs`` other than ``CERT_NONE`` asks clients for
    a certificate issued by a CA of ``ca_certs`` (PEM), which it then requires. ``ciphers``
    (an OpenSSL cipher list) picks the TLS 1.2 suites; TLS 1.3's are OpenSSL's own. The
    certificate is remembered for the ASGI ``tls`` extension's ``server_cert``.

    Raises :class:`TLSConfigError`: a file missing or not PEM, a key that does not match or
    cannot be decrypted, a cipher list selecting nothing, client certificates asked for
    without the CA to verify them."""
    if cert_reqs != ssl.CERT_NONE and ca_certs is None:
        raise TLSConfigError(
            f"--ssl-cert-reqs {int(cert_reqs)} verifies client certificates: give the CA that issues them "
            "with --ssl-ca-certs"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_certificate(context, certfile, keyfile, password)
    if ca_certs is not None:
        try:
            context.load_verify_locations(cafile=ca_certs)
        except (OSError, ssl.SSLError) as error:
            raise TLSConfigError(
                f"cannot load the CA certificates (--ssl-ca-certs) {ca_certs}: {_reason(error)}"
            ) from None
    context.verify_mode = cert_reqs
    if ciphers is not None:
        try:
            context.set_ciphers(ciphers)
        except ssl.SSLError:
            raise TLSConfigError(
                f"--ssl-ciphers {ciphers!r} selects no cipher suite OpenSSL knows; "
                "see `openssl ciphers -v 'LIST'` for what a list selects"
            ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(ALPN_PROTOCOLS if h2 else ["http/1.1"])
    return context


def _load_certificate(context: ssl.SSLContext, certfile: str, keyfile: str | None, password: str | None) -> None:
    key = keyfile or certfile
    asked = False

    def key_password() -> str:
        nonlocal asked
        asked = True
        if password is None:
            raise TLSConfigError(f"the private key {key} is encrypted: give its password with --ssl-keyfile-password")
        return password

    try:
        context.load_cert_chain(certfile, keyfile, key_password)
    except (OSError, ssl.SSLError) as error:
        if asked:
            raise TLSConfigError(f"--ssl-keyfile-password does not decrypt the private key {key}") from None
        raise TLSConfigError(f"cannot load the TLS certificate {certfile} and its key: {_reason(error)}") from None
    found = _CERTIFICATE.search(Path(certfile).read_bytes())
    if found is not None:
        remember_server_certificate(context, ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(found[0].decode())))


def _reason(error: OSError | ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLError) or error.strerror is None:
        return str(error)
    return error.strerror
