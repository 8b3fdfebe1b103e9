"""Reading one WebSocket's stream: ``os.read`` on a plain socket, and fairly.

On a plain TCP or Unix socket on POSIX the session's reader calls ``os.read`` on the socket's
descriptor and waits through trio only when nothing is there, skipping the stream's per-call
bookkeeping, as ``http1.wire.Wire`` does (7 % of a 1 KiB echo's instructions). A read that did
not have to wait is followed by a scheduler pass, as trio's own ``receive_some`` does: a client
flooding the connection (with pongs, say, which need no answer) cannot hold the scheduler. Other
streams (TLS, the tests' memory streams) are read through their ``receive_some``.
"""

from __future__ import annotations

import os

import trio

__all__ = ["RECEIVE_SIZE", "Reads"]

RECEIVE_SIZE = 65536


class Reads:
    """The reading side of one WebSocket's stream."""

    __slots__ = ("_fd", "_stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        socket = stream.socket if type(stream) is trio.SocketStream else None
        self._fd = socket.fileno() if socket is not None and os.name == "posix" else -1

    async def receive_some(self) -> bytes:
        """Up to ``RECEIVE_SIZE`` bytes from the client; ``b""`` at its end, or when the
        connection broke. A cancellation point before anything is read, as trio's are."""
        fd = self._fd
        try:
            if fd < 0:
                return bytes(await self._stream.receive_some(RECEIVE_SIZE))
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                data = os.read(fd, RECEIVE_SIZE)
            except BlockingIOError:
                return await self._wait_and_read(fd)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return b""

    async def _wait_and_read(self, fd: int) -> bytes:
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                return os.read(fd, RECEIVE_SIZE)
            except BlockingIOError:
                pass
