"""Proxy headers: the real client and scheme of a request that came through a trusted proxy.

A reverse proxy connects to us itself, so the socket's peer is the proxy; it says who the client
was in ``Forwarded`` (RFC 7239) or ``X-Forwarded-For`` / ``X-Forwarded-Proto``. Anyone can send
those fields, so they are believed only from peers listed as trusted, and a chain of addresses is
read from the right, where the trusted proxies appended theirs, skipping every trusted hop: the
first untrusted address is the client. A client cannot forge its way past that.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .._handling import Handler
from .._request import Address, Request
from .._response import Response
from ..websocket import WebSocketHandler, WebSocketRequest

__all__ = ["ProxyHeaders", "ProxyHeadersWebSocket", "TrustedProxies"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
"""The schemes a proxy may name, as the request's (a WebSocket's ``ws``/``wss`` follow from it)."""


class TrustedProxies:
    """The peers whose proxy headers are believed: a comma-separated list of IP addresses and
    networks (``127.0.0.1, 10.0.0.0/8, ::1``), or ``*`` for every peer.

    A peer over a Unix socket is always trusted: only a process on this machine can connect
    there, which is how a local proxy is deployed. Raises ``ValueError`` naming a bad entry.
    """

    def __init__(self, spec: str) -> None:
        entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
        self.everyone = "*" in entries
        self.networks: list[_Network] = []
        for entry in entries:
            if entry == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network (as in 10.0.0.0/8), nor '*'") from None

    def __contains__(self, host: object) -> bool:
        if self.everyone:
            return True
        try:
            address = ipaddress.ip_address(str(host))
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def trusts_peer(self, peer: Address) -> bool:
        """Whether the socket peer ``peer`` (an address tuple, or a Unix socket path) is trusted."""
        if not isinstance(peer, tuple):
            return True
        return peer[0] in self


class ProxyHeaders:
    """A handler that sets ``request.client`` and ``request.scheme`` from the proxy headers of
    a trusted peer, then calls ``handler``. Requests from other peers pass through unchanged."""

    def __init__(self, handler: Handler, trusted: TrustedProxies) -> None:
        self.handler = handler
        self.trusted = trusted

    async def __call__(self, request: Request) -> Response:
        if self.trusted.trusts_peer(request.client):
            apply_proxy_headers(request, self.trusted)
        return await self.handler(request)


class ProxyHeadersWebSocket:
    """:class:`ProxyHeaders` for a WebSocket handler: the upgrade request's client and scheme
    (``wss`` behind a TLS proxy) from the proxy headers of a trusted peer."""

    def __init__(self, handler: WebSocketHandler, trusted: TrustedProxies) -> None:
        self.handler = handler
        self.trusted = trusted

    async def __call__(self, request: WebSocketRequest) -> None:
        if self.trusted.trusts_peer(request.client):
            apply_proxy_headers(request.request, self.trusted)
        await self.handler(request)


def apply_proxy_headers(request: Request, trusted: TrustedProxies) -> None:
    """Rewrite ``request``'s client and scheme from ``Forwarded`` when present, else from
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` (whose rightmost value, set by the nearest
    proxy, is the one believed). The caller has checked that the peer is trusted."""
    forwarded = request.headers.get_all("forwarded")
    if forwarded:
        hops = [(_node_address(element.get("for", "")), element.get("proto")) for element in _forwarded(forwarded)]
    else:
        hops = [(_node_address(host), None) for host in _items(request.headers.get_all("x-forwarded-for"))]
        protos = _items(request.headers.get_all("x-forwarded-proto"))
        if protos:
            _set_scheme(request, protos[-1])
    client = _client_hop(hops, trusted)
    if client is not None:
        request.client, proto = client
        if proto is not None:
            _set_scheme(request, proto)


def _client_hop(
    hops: list[tuple[tuple[str, int], str | None]], trusted: TrustedProxies
) -> tuple[tuple[str, int], str | None] | None:
    """The rightmost hop that is not a trusted proxy, or the leftmost when all are."""
    for hop in reversed(hops):
        if hop[0][0] not in trusted:
            return hop
    return hops[0] if hops else None


def _set_scheme(request: Request, proto: str) -> None:
    scheme = _SCHEMES.get(proto.strip().lower())
    if scheme is not None:
        request.scheme = scheme


def _items(values: Iterable[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _forwarded(values: Iterable[str]) -> list[dict[str, str]]:
    """The elements of ``Forwarded`` fields as lower-cased-key dicts (RFC 7239 section 4)."""
    elements = []
    for element in _items(values):
        pairs = {}
        for pair in element.split(";"):
            key, _, value = pair.partition("=")
            pairs[key.strip().lower()] = value.strip().strip('"')
        elements.append(pairs)
    return elements


def _node_address(node: str) -> tuple[str, int]:
    """``host`` and port of a node as written in these headers: ``1.2.3.4``, ``1.2.3.4:80``,
    ``[::1]:80``, ``::1`` or an obfuscated identifier; the port is 0 when not given."""
    node = node.strip()
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif node.count(":") == 1:
        host, _, port = node.partition(":")
    else:
        host, port = node, ""
    return host, int(port) if port.isdigit() else 0
