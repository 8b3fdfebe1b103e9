"""A stream's request body as its handler reads it, straight from the stream: no task between
the connection's reader and the handler, and no scheduler pass per chunk."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .._errors import ProtocolError

if TYPE_CHECKING:
    from ._stream import Stream

__all__ = ["BodyReader"]

logger = logging.getLogger("trio_httpchannel")


class BodyReader:
    """The chunks of ``stream``'s request body, for ``RequestBody`` to iterate in the
    handler's own task. A chunk's flow-control window is given back to the client only as the
    handler takes it, so the client sends as fast as the handler reads and no faster.

    Iteration ends only when the client ended the body. It raises the body's error
    (``ProtocolError``: too large, or ``body_timeout`` passed between chunks), and once the
    stream is over before the body was taken whole ``ClientDisconnected`` (the stream was
    reset) or ``trio.ClosedResourceError`` (the response was sent): a cut body never looks
    complete."""

    __slots__ = ("_stream", "_timeout")

    def __init__(self, stream: Stream, timeout: float) -> None:
        self._stream = stream
        self._timeout = timeout

    def __aiter__(self) -> BodyReader:
        return self

    async def __anext__(self) -> bytes:
        stream = self._stream
        while True:
            try:
                chunk = await stream.next_chunk(self._timeout)
            except ProtocolError as error:
                logger.debug("bad request body on stream %d: %s", stream.id, error.message)
                raise
            if chunk is None:
                raise StopAsyncIteration
            data, flow = chunk
            stream.connection.acknowledge(stream.id, flow)
            if data:
                return data

    def close(self) -> None:
        """The response is sent. Nothing to release here: the stream, being over, gave the
        window of what is left unread back, and reading it now raises ClosedResourceError."""
