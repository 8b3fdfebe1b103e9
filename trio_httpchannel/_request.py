"""A request as the handler sees it, and its streamed body."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol, Union

import trio

from ._headers import Headers
from ._target import split_target
from ._tls import TLSInfo

if TYPE_CHECKING:
    from ._response import HeaderPairs, Response

__all__ = ["ChunkSource", "ExchangeView", "Request", "RequestBody"]

Address = Union[tuple[Any, ...], str, None]


class _Consumer(enum.Enum):
    """What took a body's chunks, which can be taken only once."""

    ITERATION = "iterating request.body"
    READ = "request.read()"


def _already_consumed(earlier: _Consumer, now: _Consumer) -> str:
    """The message for taking a body's chunks ``now`` after ``earlier`` took them."""
    if earlier is _Consumer.READ and now is _Consumer.ITERATION:
        return "the request body was already read by request.read(); call read() again, it returns the same bytes"
    if earlier is _Consumer.READ:
        return "request.read() was called before and did not finish (it raised or was cancelled): the body is gone"
    if now is _Consumer.READ:
        return "request.read() cannot return the body: it was already consumed by iterating request.body"
    return "the request body was already iterated; iterate it only once, or use request.read(), which keeps the bytes"


class ChunkSource(Protocol):
    """Where a body's chunks come from: the ``trio.MemoryReceiveChannel`` an HTTP/1.1
    connection's reader feeds, or an HTTP/2 stream read in the handler's own task. Closed
    when the response is sent; iterating it then raises ``trio.ClosedResourceError``."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class RequestBody:
    """The body of one request, as an async iterator of ``bytes`` chunks.

    Chunks arrive as the client sends them; the channel reads the socket only as fast as the
    handler iterates, so a large upload never piles up in memory. Iterating raises
    :class:`ProtocolError` when the body turns out malformed, too large or too slow.
    The chunks can be taken once, by iterating or by :meth:`Request.read` (which keeps the
    bytes for its later calls); taking them again raises ``RuntimeError`` saying which took them.
    It raises :class:`ClientDisconnected` when the connection ends before the body is complete:
    a body that ends without an exception is exactly what the client sent.
    """

    __slots__ = ("_receive", "_on_first_read", "_consumed", "_error")

    def __init__(
        self,
        receive: ChunkSource | None,
        on_first_read: Callable[[], None] | None = None,
    ) -> None:
        self._receive = receive
        self._on_first_read = on_first_read
        self._consumed: _Consumer | None = None
        self._error: Exception | None = None

    def _fail(self, error: Exception) -> None:
        """Make the reader of this body see ``error`` once the chunks before it are read."""
        self._error = error

    def _abandon(self) -> None:
        """The response is sent: whatever of the body is still unread will be discarded. A
        reader sees ``trio.ClosedResourceError`` then, or the body's error when it failed (its
        error response can be sent while the handler still reads)."""
        self._on_first_read = None
        if self._receive is not None:
            self._receive.close()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._take(_Consumer.ITERATION)

    def _take(self, consumer: _Consumer) -> AsyncIterator[bytes]:
        if self._consumed is not None:
            raise RuntimeError(_already_consumed(self._consumed, consumer))
        self._consumed = consumer
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        if self._receive is None:
            return
        if self._on_first_read is not None:
            self._on_first_read()
        try:
            async for item in self._receive:
                yield item
        except trio.ClosedResourceError:
            if self._error is None:
                raise
        if self._error is not None:
            raise self._error


class ExchangeView(Protocol):
    """What the request and its adapter may do with the exchange the request belongs to
    (``Request._exchange``, ``None`` once the response is sent): the ASGI adapter gives its
    response before the app returns, learns when the request is over, and has the connection
    aborted (its app cancelled) when the client leaves in the middle of a streamed response."""

    @property
    def is_over(self) -> bool: ...

    async def wait_over(self) -> None: ...

    async def respond_early(self, response: Response) -> None: ...

    async def send_informational(self, status: int, headers: HeaderPairs) -> None: ...

    def abort_on_client_left(self) -> None: ...


class Request:
    """One HTTP request: its head, parsed, and its body, streamed.

    ``target`` is the request-target exactly as sent; ``path`` and ``query`` are its two halves
    split at the first ``?``, not percent-decoded (for an absolute-form target such as
    ``http://example.com/a?q=1``, the path after its authority, ``/`` when empty; the authority
    is then the ``Host`` header, RFC 9112 section 3.2.2). ``client`` and ``server`` are the socket
    addresses when the stream has a socket (``None`` for in-memory streams). ``tls`` is what the
    connection's TLS handshake settled (:class:`TLSInfo`: version, cipher suite, the client's
    certificate), ``None`` in cleartext (also behind a balancer that ended TLS).

    ``nursery`` is the connection's nursery: a task a handler starts there may outlive the
    handler's return (to produce a streamed body, say) but not the connection, whose end
    cancels it. Such a task must handle its own errors.
    """

    __slots__ = (
        "method",
        "target",
        "path",
        "query",
        "http_version",
        "headers",
        "scheme",
        "client",
        "server",
        "tls",
        "body",
        "nursery",
        "_content",
        "_exchange",
    )

    def __init__(
        self,
        method: str,
        target: str,
        http_version: str,
        headers: Headers,
        body: RequestBody,
        *,
        scheme: str = "http",
        client: Address = None,
        server: Address = None,
        tls: TLSInfo | None = None,
        nursery: trio.Nursery | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.path, self.query = split_target(target)
        self.http_version = http_version
        self.headers = headers
        self.scheme = scheme
        self.client = client
        self.server = server
        self.tls = tls
        self.body = body
        self.nursery = nursery
        self._content: bytes | None = None
        self._exchange: ExchangeView | None = None

    async def read(self) -> bytes:
        """The whole body. Reads it on the first call; later calls return the same bytes."""
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.body._take(_Consumer.READ)])
        return self._content

    def is_disconnected(self) -> bool:
        """Whether nothing more about this request reaches the client: its side of the
        connection ended or the connection broke while the request was in flight, its body
        failed (the client gets the error status), or the response is already sent. Does not
        block. A client that only half-closed (shut its sending side) still receives an answer
        the handler gives anyway, so a handler may check this and stop early, or answer."""
        exchange = self._exchange
        return exchange is None or exchange.is_over

    async def wait_disconnected(self) -> None:
        """Wait until :meth:`is_disconnected` is true: race it against slow work (a long poll,
        the wait between two events of a stream) to stop when the client goes away. The
        channel notices the client leaving while it reads the connection: with one request in
        flight once its body (if any) is read, not while the pipeline is full or a handler has
        yet to read its body (the body is read from the socket only as fast as the handler
        takes it)."""
        exchange = self._exchange
        if exchange is not None:
            await exchange.wait_over()

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} HTTP/{self.http_version}>"
