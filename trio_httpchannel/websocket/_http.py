"""The HTTP side of an upgrade request's answer: the ``101`` head, or a refusal and the close.

Each write is bounded by ``send_timeout``. A refusal closes the connection the way the HTTP/1.1
channel closes one (lingering close): half-close, read and discard until the client closes or
``linger_timeout`` passes, so that bytes the client sent after its handshake (its first frames,
say) cannot make the kernel reset the refusal away.
"""

from __future__ import annotations

import trio

from .._config import Settings
from .._response import Response
from ..http1.serializer import Framing, serialize_head

__all__ = ["linger", "refusal_bytes", "send_head"]

_RECEIVE_SIZE = 65536


def refusal_bytes(response: Response) -> bytes:
    """The bytes of ``response`` refusing a handshake (it closes the connection). Raises
    ``TypeError`` for a streamed body and ``ValueError`` for a header that could split it."""
    if not isinstance(response.body, (bytes, bytearray, memoryview)):
        raise TypeError("the response refusing a WebSocket has a bytes body, not a stream")
    head = serialize_head(response, method="GET", http_version="1.1", keep_alive=False)
    return head.data + bytes(response.body) if head.framing is not Framing.NONE else head.data


async def send_head(stream: trio.abc.Stream, data: bytes, settings: Settings) -> bool:
    """Write ``data``; whether the client took it within ``send_timeout``."""
    with trio.move_on_after(settings.send_timeout):
        try:
            await stream.send_all(data)
            return True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
    return False


async def linger(stream: trio.abc.Stream, settings: Settings) -> None:
    """After a refusal: half-close, then read and discard until the client closes or
    ``linger_timeout`` passes."""
    with trio.move_on_after(settings.linger_timeout):
        try:
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
            while await stream.receive_some(_RECEIVE_SIZE):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
