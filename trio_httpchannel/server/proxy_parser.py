"""The PROXY protocol's header, versions 1 and 2, parsed from bytes (sans-io).

A TCP-level load balancer (HAProxy ``send-proxy``, nginx ``proxy_protocol on``, AWS NLB, ...)
connects to us itself, so the socket's peer is the balancer. It says who the client was in one
header sent before anything else on the connection, specified at
https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt. This module only turns bytes into
a :class:`ProxyHeader`; :mod:`.proxy_protocol` reads them from a connection.

The header is bounded before it is believed: a version 1 line is at most 107 bytes, a version 2
header at most 16 bytes plus the length its fixed part announces (a 16-bit field). Anything that
does not follow the specification to the letter raises :class:`ProxyProtocolError`: a balancer
never sends it, so it is a client speaking to the wrong port, or an attack.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
from collections.abc import Collection

from .._request import Address

__all__ = [
    "MAX_V1_LENGTH",
    "V2_SIGNATURE",
    "ProxyHeader",
    "ProxyProtocolError",
    "SSLInfo",
    "parse_proxy_header",
]

MAX_V1_LENGTH = 107
"""The longest version 1 line, CRLF included (the specification's worst case, TCP6)."""

V1_SIGNATURE = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_FIXED = 16

# Version 2: commands, families and transports (the high and low nibbles of bytes 13 and 14).
_LOCAL, _PROXY = 0x0, 0x1
_UNSPEC, _INET, _INET6, _UNIX = 0x0, 0x1, 0x2, 0x3
_STREAM = 0x1
_ADDRESS_FORMATS = {_INET: "!4s4sHH", _INET6: "!16s16sHH", _UNIX: "!108s108s"}

# Version 2 TLV types (section 2.2 of the specification).
PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_UNIQUE_ID = 0x05
PP2_TYPE_SSL = 0x20
PP2_CLIENT_SSL = 0x01
_SSL_FIELDS = {0x21: "version", 0x22: "cn", 0x23: "cipher", 0x24: "sig_alg", 0x25: "key_alg"}


class ProxyProtocolError(Exception):
    """The bytes are not a PROXY protocol header we accept; ``str()`` says why."""


@dataclasses.dataclass(frozen=True)
class SSLInfo:
    """The ``PP2_TYPE_SSL`` TLV: how the client connected to the balancer, when over TLS.

    ``tls`` is whether the client's connection used TLS at all; ``verified`` whether a client
    certificate was presented and verified; the strings are the balancer's names for them
    (``version`` as ``TLSv1.3``, ``cn`` the client certificate's common name), or ``None``."""

    client: int
    verify: int
    version: str | None = None
    cn: str | None = None
    cipher: str | None = None
    sig_alg: str | None = None
    key_alg: str | None = None

    @property
    def tls(self) -> bool:
        return bool(self.client & PP2_CLIENT_SSL)

    @property
    def verified(self) -> bool:
        return self.tls and self.verify == 0 and bool(self.client & 0x06)


@dataclasses.dataclass(frozen=True)
class ProxyHeader:
    """One connection's PROXY protocol header.

    ``client`` and ``server`` are the addresses the balancer saw (``(host, port)``, or a path for
    ``AF_UNIX``), or both ``None`` when the header carries none: a ``LOCAL`` connection (the
    balancer's own health check) or an ``UNKNOWN``/``AF_UNSPEC`` one; the socket's addresses
    then stand. ``tlvs`` are version 2's type-length-value fields as sent, in order; the ones we
    understand are also parsed into ``alpn``, ``authority``, ``unique_id`` and ``ssl``.
    """

    version: int
    local: bool = False
    client: Address = None
    server: Address = None
    tlvs: tuple[tuple[int, bytes], ...] = ()
    alpn: bytes | None = None
    authority: str | None = None
    unique_id: bytes | None = None
    ssl: SSLInfo | None = None

    @property
    def carries_addresses(self) -> bool:
        return self.client is not None


def parse_proxy_header(data: bytes, versions: Collection[int] = (1, 2)) -> tuple[ProxyHeader, int] | None:
    """The header at the start of ``data`` and its length in bytes, or ``None`` while ``data``
    is too short to tell. Only the ``versions`` given are accepted; any other start raises
    :class:`ProxyProtocolError`, as does a malformed or oversized header."""
    if data[:_V2_FIXED].startswith(V2_SIGNATURE[: len(data)]) and 2 in versions:
        return _parse_v2(data)
    if data[:MAX_V1_LENGTH].startswith(V1_SIGNATURE[: len(data)]) and 1 in versions:
        return _parse_v1(data)
    wanted = " or ".join(f"version {version}" for version in sorted(versions))
    raise ProxyProtocolError(f"the connection does not start with a PROXY protocol {wanted} header")


# Version 1: one line of text ---------------------------------------------------------------------


def _parse_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    end = data.find(b"\r\n", 0, MAX_V1_LENGTH)
    if end < 0:
        if len(data) >= MAX_V1_LENGTH or b"\n" in data[:MAX_V1_LENGTH]:
            raise ProxyProtocolError(f"no CRLF within the first {MAX_V1_LENGTH} bytes of a version 1 header")
        return None
    fields = data[len(V1_SIGNATURE) : end].split(b" ")
    if fields[0] == b"UNKNOWN":
        return ProxyHeader(version=1), end + 2
    if len(fields) != 5 or fields[0] not in (b"TCP4", b"TCP6"):
        raise ProxyProtocolError(f"not a version 1 header: {data[:end]!r}")
    family, source, destination, source_port, destination_port = fields
    kind = ipaddress.IPv4Address if family == b"TCP4" else ipaddress.IPv6Address
    client = (_v1_host(source, kind), _v1_port(source_port))
    server = (_v1_host(destination, kind), _v1_port(destination_port))
    return ProxyHeader(version=1, client=client, server=server), end + 2


def _v1_host(text: bytes, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> str:
    try:
        return str(kind(text.decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        raise ProxyProtocolError(f"{text!r} is not an {kind.__name__[:4]} address") from None


def _v1_port(text: bytes) -> int:
    if not text.isdigit() or len(text) > 5 or (len(text) > 1 and text.startswith(b"0")) or int(text) > 65535:
        raise ProxyProtocolError(f"{text!r} is not a port number")
    return int(text)


# Version 2: binary ---------------------------------------------------------------------------------


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    if len(data) < _V2_FIXED:
        return None
    version_command, family_transport, length = struct.unpack_from("!BBH", data, 12)
    if version_command >> 4 != 2:
        raise ProxyProtocolError(f"version 2 signature with version nibble {version_command >> 4}")
    command, family, transport = version_command & 0xF, family_transport >> 4, family_transport & 0xF
    if command not in (_LOCAL, _PROXY):
        raise ProxyProtocolError(f"unknown version 2 command {command:#x}")
    if len(data) < _V2_FIXED + length:
        return None
    payload = data[_V2_FIXED : _V2_FIXED + length]
    if command == _LOCAL:
        return ProxyHeader(version=2, local=True), _V2_FIXED + length
    if family not in (_UNSPEC, *_ADDRESS_FORMATS):
        raise ProxyProtocolError(f"unknown version 2 address family {family:#x}")
    if family != _UNSPEC and transport != _STREAM:
        raise ProxyProtocolError(f"version 2 transport {transport:#x} is not a stream (TCP)")
    tlvs = _tlvs(payload, _tlv_start(family, payload))
    client, server = _v2_addresses(family, payload)
    return _with_tlvs(ProxyHeader(version=2, client=client, server=server), tlvs), _V2_FIXED + length


def _tlv_start(family: int, payload: bytes) -> int:
    size = struct.calcsize(_ADDRESS_FORMATS[family]) if family in _ADDRESS_FORMATS else 0
    if len(payload) < size:
        raise ProxyProtocolError(f"version 2 length {len(payload)} is shorter than its addresses ({size} bytes)")
    return size


def _v2_addresses(family: int, payload: bytes) -> tuple[Address, Address]:
    if family == _UNSPEC:
        return None, None
    if family == _UNIX:
        source, destination = struct.unpack_from(_ADDRESS_FORMATS[_UNIX], payload)
        return _unix_path(source), _unix_path(destination)
    source, destination, source_port, destination_port = struct.unpack_from(_ADDRESS_FORMATS[family], payload)
    host = ipaddress.IPv4Address if family == _INET else ipaddress.IPv6Address
    return (str(host(source)), source_port), (str(host(destination)), destination_port)


def _unix_path(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _tlvs(payload: bytes, start: int) -> list[tuple[int, bytes]]:
    tlvs = []
    offset = start
    while offset < len(payload):
        if offset + 3 > len(payload):
            raise ProxyProtocolError("a version 2 TLV is cut short in its type or length")
        kind, size = struct.unpack_from("!BH", payload, offset)
        value = payload[offset + 3 : offset + 3 + size]
        if len(value) != size:
            raise ProxyProtocolError(f"version 2 TLV {kind:#x} announces {size} bytes past the header's end")
        tlvs.append((kind, value))
        offset += 3 + size
    return tlvs


def _with_tlvs(header: ProxyHeader, tlvs: list[tuple[int, bytes]]) -> ProxyHeader:
    """``header`` with its TLVs, and the ones we understand parsed into their fields."""
    alpn = authority = unique_id = ssl = None
    for kind, value in tlvs:
        if kind == PP2_TYPE_ALPN:
            alpn = value
        elif kind == PP2_TYPE_AUTHORITY:
            authority = _text(value, "authority")
        elif kind == PP2_TYPE_UNIQUE_ID:
            unique_id = value
        elif kind == PP2_TYPE_SSL:
            ssl = _ssl_info(value)
    return dataclasses.replace(header, tlvs=tuple(tlvs), alpn=alpn, authority=authority, unique_id=unique_id, ssl=ssl)


def _ssl_info(value: bytes) -> SSLInfo:
    if len(value) < 5:
        raise ProxyProtocolError("the version 2 SSL TLV is shorter than its client and verify fields")
    client, verify = struct.unpack_from("!BI", value)
    names = {_SSL_FIELDS[kind]: _text(sub, _SSL_FIELDS[kind]) for kind, sub in _tlvs(value, 5) if kind in _SSL_FIELDS}
    return SSLInfo(
        client,
        verify,
        version=names.get("version"),
        cn=names.get("cn"),
        cipher=names.get("cipher"),
        sig_alg=names.get("sig_alg"),
        key_alg=names.get("key_alg"),
    )


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ProxyProtocolError(f"the version 2 {what} TLV is not UTF-8") from None
