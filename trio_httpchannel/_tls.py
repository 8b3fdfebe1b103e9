"""TLS on a connection: what a handler and an ASGI app learn about it (:class:`TLSInfo`), and
the server certificate each ``ssl.SSLContext`` serves, which OpenSSL does not tell back."""

from __future__ import annotations

import dataclasses
import ssl
import weakref
from typing import Any

import trio

__all__ = ["TLSInfo", "remember_server_certificate", "tls_info"]

_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

_SHORT_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
"""The attribute types RFC 4514 section 3 names, by OpenSSL's long name (``getpeercert``'s)."""

_OIDS = {
    "emailAddress": "1.2.840.113549.1.9.1",
    "serialNumber": "2.5.4.5",
    "surname": "2.5.4.4",
    "title": "2.5.4.12",
    "businessCategory": "2.5.4.15",
    "postalCode": "2.5.4.17",
    "name": "2.5.4.41",
    "givenName": "2.5.4.42",
    "initials": "2.5.4.43",
    "generationQualifier": "2.5.4.44",
    "dnQualifier": "2.5.4.46",
    "pseudonym": "2.5.4.65",
}
"""Other attribute types OpenSSL names, which RFC 4514 writes as their dotted OID (as OpenSSL
does itself for a type it has no name for)."""

_server_certificates: weakref.WeakKeyDictionary[ssl.SSLContext, str] = weakref.WeakKeyDictionary()
_cipher_ids: dict[str, int] = {}


def remember_server_certificate(context: ssl.SSLContext, pem: str) -> None:
    """Record that ``context`` serves the certificate ``pem`` (PEM text), for
    :attr:`TLSInfo.server_cert`: Python's ``ssl`` cannot read a loaded certificate back.
    ``trio_httpchannel.server.tls_context`` does this for the certificate it loads."""
    _server_certificates[context] = pem


@dataclasses.dataclass(frozen=True)
class TLSInfo:
    """A TLS connection, as its handshake settled it: ``Request.tls`` (``None`` in cleartext),
    and the ASGI ``tls`` extension (:meth:`asgi`).

    ``tls_version`` is the protocol version as TLS numbers it (``0x0304`` for TLS 1.3);
    ``cipher_suite`` the suite's IANA number (``0x1301`` for ``TLS_AES_128_GCM_SHA256``);
    ``server_cert`` the server's certificate in PEM, when its context was recorded by
    :func:`remember_server_certificate`, else ``None``. ``client_cert_chain`` holds the client's
    certificate in PEM, when it sent one (empty otherwise): Python's ``ssl`` gives only the
    client's own certificate, not the intermediates it sent. ``client_cert_name`` is that
    certificate's subject as an RFC 4514 string (``CN=alice,O=Example``). The certificate was
    verified: one that fails verification fails the handshake, so no request ever carries it
    (the ASGI ``client_cert_error`` is always ``None``).
    """

    tls_version: int | None
    cipher_suite: int | None
    server_cert: str | None
    client_cert_chain: tuple[str, ...]
    client_cert_name: str | None

    def asgi(self) -> dict[str, Any]:
        """The value of ``scope["extensions"]["tls"]`` (the ASGI TLS extension, version 0.2)."""
        return {
            "server_cert": self.server_cert,
            "client_cert_chain": list(self.client_cert_chain),
            "client_cert_name": self.client_cert_name,
            "client_cert_error": None,
            "tls_version": self.tls_version,
            "cipher_suite": self.cipher_suite,
        }


def tls_info(stream: trio.abc.Stream) -> TLSInfo | None:
    """What ``stream`` tells about its TLS, ``None`` when it is no ``trio.SSLStream`` or its
    handshake is not done."""
    if not isinstance(stream, trio.SSLStream):
        return None
    try:
        version = stream.version()
        cipher = stream.cipher()
        client_der = stream.getpeercert(binary_form=True)
        subject = stream.getpeercert().get("subject", ()) if client_der else ()
    except trio.NeedHandshakeError:
        return None
    return TLSInfo(
        tls_version=_VERSIONS.get(version or ""),
        cipher_suite=_cipher_id(stream.context, cipher[0]) if cipher else None,
        server_cert=_server_certificates.get(stream.context),
        client_cert_chain=(ssl.DER_cert_to_PEM_cert(client_der),) if client_der else (),
        client_cert_name=rfc4514_name(subject) if client_der else None,
    )


def _cipher_id(context: ssl.SSLContext, name: str) -> int | None:
    """The IANA number of the cipher suite OpenSSL calls ``name``: the low 16 bits of its id."""
    if name not in _cipher_ids:
        _cipher_ids.update((cipher["name"], cipher["id"] & 0xFFFF) for cipher in context.get_ciphers())
    return _cipher_ids.get(name)


def rfc4514_name(subject: Any) -> str:
    """A distinguished name as ``getpeercert()`` gives it (relative names, most significant
    first, each a tuple of ``(type, value)``) as RFC 4514 writes it: least significant first."""
    return ",".join(
        "+".join(f"{_SHORT_NAMES.get(kind) or _OIDS.get(kind, kind)}={_escaped(value)}" for kind, value in rdn)
        for rdn in reversed(subject)
    )


def _escaped(value: str) -> str:
    """An attribute value escaped as RFC 4514 section 2.4 requires."""
    escaped = "".join(f"\\{char}" if char in '"+,;<>\\' else "\\00" if char == "\0" else char for char in value)
    if escaped.startswith((" ", "#")):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped
