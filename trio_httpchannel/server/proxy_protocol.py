"""The PROXY protocol on a connection: its header read before TLS and HTTP, from trusted peers.

:func:`read_proxy_header` takes an accepted connection, checks that its peer may send the header
(the ``--forwarded-allow-ips`` rule of :mod:`.proxy_headers`), reads and parses the header within
a deadline (the channel's ``header_timeout``) and returns a :class:`ProxiedStream`: the same
connection, with the bytes read past the header given back first, and the addresses the header
carries, which the channel takes for ``request.client`` and ``request.server``. Whatever is
wrong (an untrusted peer, no header, a malformed or unexpected one, a peer too slow to send it)
closes the connection without a word, logged at debug level: the peer is not a balancer we know.

A handler reaches its connection's header, TLVs included, with :func:`proxy_header`.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging

import trio

from .._request import Address
from .._tls_opening import first_bytes
from .proxy_headers import TrustedProxies
from .proxy_parser import ProxyHeader, ProxyProtocolError, parse_proxy_header

__all__ = ["PROXY_PROTOCOL_MODES", "ProxiedStream", "ProxyProtocol", "proxy_header", "read_proxy_header"]

logger = logging.getLogger("trio_httpchannel")

PROXY_PROTOCOL_MODES = ("off", "v1", "v2", "auto")
"""``--proxy-protocol``'s values: none, version 1 only, version 2 only, or either."""

_VERSIONS = {"v1": (1,), "v2": (2,), "auto": (1, 2)}
_RECEIVE_SIZE = 65536

_current_header: contextvars.ContextVar[ProxyHeader | None] = contextvars.ContextVar(
    "trio_httpchannel_proxy_header", default=None
)


def proxy_header() -> ProxyHeader | None:
    """The PROXY protocol header of the connection whose request is being handled (its TLVs:
    ``alpn``, ``authority``, ``ssl``, ``unique_id``, all in ``tlvs``), or ``None`` when the
    server does not read the header. Call it from a handler, an ASGI app or a task they start:
    it is a context variable set for each connection's tasks."""
    return _current_header.get()


@dataclasses.dataclass(frozen=True)
class ProxyProtocol:
    """Which header versions a server expects (``mode``: ``v1``, ``v2`` or ``auto``), and from
    which peers (``trusted``); every other peer is refused. Raises ``ValueError`` for a bad mode."""

    mode: str
    trusted: TrustedProxies

    def __post_init__(self) -> None:
        if self.mode not in _VERSIONS:
            raise ValueError(f"proxy_protocol must be one of {', '.join(_VERSIONS)}, got {self.mode!r}")

    @property
    def versions(self) -> tuple[int, ...]:
        return _VERSIONS[self.mode]


class ProxiedStream(trio.abc.HalfCloseableStream):
    """A connection after its PROXY protocol header: what was read past the header comes first,
    then the connection's own bytes. ``header`` is the header; ``proxied_addresses`` what the
    channel takes instead of the socket's addresses (see ``_addresses.py``)."""

    def __init__(self, transport_stream: trio.abc.Stream, header: ProxyHeader, buffered: bytes = b"") -> None:
        self.transport_stream = transport_stream
        self.header = header
        self._buffered = buffered

    @property
    def proxied_addresses(self) -> tuple[bool, Address, Address] | None:
        """Whether the client spoke TLS to the balancer, and the client's and server's addresses,
        when the header carries addresses (``None`` for ``LOCAL`` and ``UNKNOWN``)."""
        header = self.header
        if not header.carries_addresses:
            return None
        return header.ssl is not None and header.ssl.tls, header.client, header.server

    async def peek(self) -> bytes | None:
        """The client's first bytes past the header, left unread (``None`` when the connection
        under it cannot tell them): for the plain-HTTP check before TLS (``_tls_opening``)."""
        return self._buffered or await first_bytes(self.transport_stream)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._buffered:
            size = len(self._buffered) if max_bytes is None else max_bytes
            data, self._buffered = self._buffered[:size], self._buffered[size:]
            await trio.lowlevel.checkpoint()
            return data
        return await self.transport_stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport_stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if isinstance(self.transport_stream, trio.abc.HalfCloseableStream):
            await self.transport_stream.send_eof()

    async def aclose(self) -> None:
        await self.transport_stream.aclose()


async def read_proxy_header(stream: trio.abc.Stream, protocol: ProxyProtocol, timeout: float) -> ProxiedStream | None:
    """``stream`` past its PROXY protocol header, or ``None`` after closing it when its peer is
    not trusted or its header is missing, malformed, unexpected or not all there within
    ``timeout`` seconds. Sets the header for :func:`proxy_header` in the calling task."""
    peer = _peer(stream)
    if not protocol.trusted.trusts_peer(peer):
        logger.debug("refusing a connection from %s: not a trusted proxy (--forwarded-allow-ips)", peer)
        await trio.aclose_forcefully(stream)
        return None
    data = b""
    try:
        with trio.fail_after(timeout):
            while (parsed := parse_proxy_header(data, protocol.versions)) is None:
                received = await stream.receive_some(_RECEIVE_SIZE)
                if not received:
                    raise ProxyProtocolError("the connection closed before its PROXY protocol header ended")
                data += received
    except (ProxyProtocolError, trio.TooSlowError, trio.BrokenResourceError, OSError) as error:
        reason = "no PROXY protocol header within header_timeout" if isinstance(error, trio.TooSlowError) else error
        logger.debug("closing the connection from %s: %s", peer, reason)
        await trio.aclose_forcefully(stream)
        return None
    header, length = parsed
    _current_header.set(header)
    return ProxiedStream(stream, header, data[length:])


def _peer(stream: trio.abc.Stream) -> Address:
    sock = getattr(stream, "socket", None)
    if sock is None:
        return None
    try:
        peer = sock.getpeername()
    except OSError:
        return None
    return tuple(peer[:2]) if isinstance(peer, tuple) else peer
