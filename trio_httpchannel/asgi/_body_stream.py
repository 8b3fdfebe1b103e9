"""A streamed ASGI response body: the chunks the app sends, handed to the channel's writer one at
a time, so that the app runs only as fast as the client reads."""

from __future__ import annotations

import trio

from .._errors import ClientDisconnected

__all__ = ["BodyStream"]


class BodyStream:
    """A streamed response body: what the app sends, handed to the channel's writer as it reads.

    ``put`` returns once the writer has taken the chunk, so the app runs only as fast as the
    client reads, and raises :class:`ClientDisconnected` once the writer is gone. When the
    writer sends no body (HEAD, 204, 304) it closes the stream: an app still producing the body
    of a HEAD answer is cancelled (``app_scope``); any other gets the exception at its next
    ``send()``.
    """

    __slots__ = ("_send", "_receive", "_error", "_app_scope", "complete")

    def __init__(self, app_scope: trio.CancelScope | None) -> None:
        self._send, self._receive = trio.open_memory_channel[bytes](0)
        self._error: BaseException | None = None
        self._app_scope = app_scope
        self.complete = False

    async def put(self, data: bytes, more: bool) -> None:
        try:
            if data:
                await self._send.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ClientDisconnected("the response is no longer being sent") from None
        if not more:
            self._send.close()

    def fail(self, error: BaseException) -> None:
        """End the body with ``error``: the writer aborts the connection."""
        self._error = error
        self._send.close()

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from None
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """The writer sends no body (HEAD, 204, 304): an app still producing it stops
        (cancelled first, so that a ``put`` waiting now ends in ``Cancelled``)."""
        if not self.complete and self._app_scope is not None:
            self._app_scope.cancel()
        self._receive.close()
        await trio.lowlevel.checkpoint()
