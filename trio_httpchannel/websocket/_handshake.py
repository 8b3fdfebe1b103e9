"""The opening handshake of RFC 6455 section 4.2, server side (sans-io).

Three questions about a request, each answered from its method, version and headers alone:
does it ask for a WebSocket at all (:func:`is_websocket_upgrade`), is its handshake one we can
accept (:func:`parse_handshake`, else :class:`HandshakeError` with the status to answer), and what
is the ``101 Switching Protocols`` that accepts it (:meth:`Handshake.accept`). The accept token is
wsproto's; permessage-deflate is negotiated by ``_deflate``.

Over HTTP/2 (RFC 8441) the handshake is an extended CONNECT with ``:protocol: websocket``
(:func:`parse_extended_connect`): no key and no accept token, the version, subprotocols and
extensions as over HTTP/1.1 (:meth:`Handshake.negotiate`), and ``200`` accepts it.
"""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple

from wsproto.extensions import Extension
from wsproto.utilities import generate_accept_token

from .._headers import Headers
from .._response import HeaderPairs, header_pairs
from ..http1.serializer import serialize_informational
from ._deflate import negotiate_deflate
from ._errors import HandshakeError

__all__ = ["Accepted", "Handshake", "Negotiated", "is_websocket_upgrade", "parse_extended_connect", "parse_handshake"]

_VERSION = "13"
_HANDSHAKE_FIELDS = frozenset(
    {b"upgrade", b"connection", b"sec-websocket-accept", b"sec-websocket-extensions", b"sec-websocket-protocol"}
)
Fields = list[tuple[str | bytes, str | bytes]]
"""Response fields the handshake itself sets: an application may not give them."""
_FRAMING_FIELDS = frozenset({b"content-length", b"transfer-encoding"})


def is_websocket_upgrade(http_version: str, headers: Headers) -> bool:
    """Whether a request asks to become a WebSocket: an HTTP/1.1 request whose Upgrade field
    names ``websocket``. Such a request is answered by the WebSocket layer (``101`` or a refusal)
    and nothing after it is parsed as HTTP. (RFC 9110 section 7.8: an Upgrade field in an HTTP/1.0
    request is ignored, so that request is plain HTTP.)"""
    if http_version != "1.1":
        return False
    for name, value in headers.raw:
        if name == b"upgrade" and b"websocket" in _tokens(value):
            return True
    return False


class Accepted(NamedTuple):
    """What accepting a handshake gives: the bytes of the ``101`` response head and the
    extensions the WebSocket then runs with."""

    head: bytes
    extensions: list[Extension]


class Negotiated(NamedTuple):
    """What the server agreed to, whatever carries the WebSocket: the response fields saying so
    (``Sec-WebSocket-Protocol``, ``Sec-WebSocket-Extensions``, then the application's own) and the
    extensions the WebSocket runs with."""

    fields: Fields
    extensions: list[Extension]


class Handshake:
    """A valid opening handshake: what the client offered, and the response that accepts it.
    ``key`` is the ``Sec-WebSocket-Key`` of an HTTP/1.1 handshake, ``None`` over HTTP/2."""

    __slots__ = ("extension_offers", "key", "subprotocols")

    def __init__(self, key: bytes | None, subprotocols: tuple[str, ...], extension_offers: tuple[str, ...]) -> None:
        self.key = key
        self.subprotocols = subprotocols
        """The client's Sec-WebSocket-Protocol values, in its order of preference."""
        self.extension_offers = extension_offers
        """The client's Sec-WebSocket-Extensions offers, one string each."""

    def accept(
        self,
        *,
        subprotocol: str | None = None,
        headers: HeaderPairs = (),
        per_message_deflate: bool,
        max_size: int,
    ) -> Accepted:
        """The ``101`` accepting this (HTTP/1.1) handshake, as :meth:`negotiate` agrees. Raises
        ``ValueError`` as :meth:`negotiate` does, or for a header that could split the response."""
        negotiated = self.negotiate(
            subprotocol=subprotocol, headers=headers, per_message_deflate=per_message_deflate, max_size=max_size
        )
        return Accepted(self.switching_head(negotiated), negotiated.extensions)

    def switching_head(self, negotiated: Negotiated) -> bytes:
        """The head of the ``101`` carrying ``negotiated`` (an HTTP/1.1 handshake's: it has a
        key). Raises ``ValueError`` for a header that could split the response."""
        if self.key is None:
            raise RuntimeError("an HTTP/2 handshake is accepted with 200, not 101")
        fields: Fields = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", generate_accept_token(self.key)),
            *negotiated.fields,
        ]
        return serialize_informational(101, fields)

    def negotiate(
        self,
        *,
        subprotocol: str | None = None,
        headers: HeaderPairs = (),
        per_message_deflate: bool,
        max_size: int,
    ) -> Negotiated:
        """Accept ``subprotocol`` (one the client offered, or ``None``) with the application's
        extra ``headers`` and, when ``per_message_deflate`` allows and the client offered it,
        compression whose inflation stops at ``max_size`` bytes a message. Raises ``ValueError``
        for a subprotocol the client did not offer, or a header the handshake sets itself."""
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(
                f"the subprotocol {subprotocol!r} was not offered by the client (it offered {self.subprotocols})"
            )
        fields: Fields = []
        if subprotocol is not None:
            fields.append((b"Sec-WebSocket-Protocol", subprotocol))
        extensions: list[Extension] = []
        negotiated = negotiate_deflate(self.extension_offers, max_size) if per_message_deflate else None
        if negotiated is not None:
            extension, offer = negotiated
            extensions.append(extension)
            fields.append((b"Sec-WebSocket-Extensions", offer))
        for name, value in header_pairs(headers):
            lowered = (name.encode("latin-1") if isinstance(name, str) else name).lower()
            if lowered in _HANDSHAKE_FIELDS or lowered in _FRAMING_FIELDS:
                raise ValueError(
                    f"the {lowered.decode('latin-1')} header of a WebSocket's acceptance is the handshake's own;"
                    " it cannot be given"
                )
            fields.append((name, value))
        return Negotiated(fields, extensions)


def parse_handshake(method: str, http_version: str, headers: Headers) -> Handshake:
    """The handshake of a request that :func:`is_websocket_upgrade`, checked as RFC 6455 section
    4.2.1 asks. Raises :class:`HandshakeError`: ``426`` (with ``Sec-WebSocket-Version: 13``) for
    another protocol version, ``400`` for anything else malformed."""
    if method != "GET":
        raise HandshakeError(400, f"a WebSocket handshake is a GET request, not {method}")
    if http_version != "1.1":
        raise HandshakeError(400, f"a WebSocket handshake is an HTTP/1.1 request, not HTTP/{http_version}")
    if b"upgrade" not in _field_tokens(headers, "connection"):
        raise HandshakeError(400, "a WebSocket handshake has 'upgrade' in its Connection field")
    if b"websocket" not in _field_tokens(headers, "upgrade"):
        raise HandshakeError(400, "a WebSocket handshake has 'websocket' in its Upgrade field")
    _check_version(headers.get_all("sec-websocket-version"))
    key = _key(headers.get_all("sec-websocket-key"))
    if (headers.get("content-length") or "0").strip() != "0" or "transfer-encoding" in headers:
        raise HandshakeError(400, "a WebSocket handshake has no body")
    return Handshake(key, _elements(headers, "sec-websocket-protocol"), _elements(headers, "sec-websocket-extensions"))


def parse_extended_connect(headers: Headers) -> Handshake:
    """The handshake of an HTTP/2 extended CONNECT with ``:protocol: websocket`` (RFC 8441
    section 5; the pseudo-headers are the HTTP/2 layer's to check), checked as over HTTP/1.1
    but for what HTTP/2 leaves out (Upgrade, Connection, the key). Raises
    :class:`HandshakeError`: ``426`` (with ``Sec-WebSocket-Version: 13``, and no ``Upgrade``,
    which HTTP/2 forbids) for another protocol version, ``400`` for none."""
    _check_version(headers.get_all("sec-websocket-version"), upgrade=False)
    return Handshake(None, _elements(headers, "sec-websocket-protocol"), _elements(headers, "sec-websocket-extensions"))


def _check_version(values: list[str], *, upgrade: bool = True) -> None:
    supported = [(b"Sec-WebSocket-Version", _VERSION.encode())]
    if not values:
        raise HandshakeError(400, "a WebSocket handshake has a Sec-WebSocket-Version field", supported)
    if [value.strip() for value in values] != [_VERSION]:
        fields = [(b"Upgrade", b"websocket"), *supported] if upgrade else supported
        raise HandshakeError(426, f"this server speaks WebSocket version {_VERSION}, not {', '.join(values)}", fields)


def _key(values: list[str]) -> bytes:
    if len(values) != 1:
        raise HandshakeError(400, f"a WebSocket handshake has one Sec-WebSocket-Key field, not {len(values)}")
    key = values[0].strip()
    try:
        nonce = base64.b64decode(key.encode("latin-1"), validate=True)
    except (binascii.Error, ValueError):
        nonce = b""
    if len(nonce) != 16:
        raise HandshakeError(400, "the Sec-WebSocket-Key is not 16 bytes in base64")
    return key.encode("ascii")


def _elements(headers: Headers, name: str) -> tuple[str, ...]:
    """The comma-separated elements of every ``name`` field, in order, empty ones dropped."""
    return tuple(element for value in headers.get_all(name) for element in map(str.strip, value.split(",")) if element)


def _field_tokens(headers: Headers, name: str) -> set[bytes]:
    key = name.encode("latin-1")
    return {token for field, value in headers.raw if field == key for token in _tokens(value)}


def _tokens(value: bytes) -> list[bytes]:
    """The lower-cased tokens of a comma-separated field; a protocol's version (``websocket/13``)
    is dropped, as Upgrade allows it."""
    return [element.strip().lower().partition(b"/")[0] for element in value.split(b",")]
