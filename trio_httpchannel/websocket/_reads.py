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

    @property
    def fd(self) -> int:
        """The socket's descriptor, which is read with ``os.read`` (``-1``: another stream)."""
        return self._fd

    @property
    def watchable(self) -> bool:
        """Whether a task can wait for the stream's bytes without reading them (a plain socket:
        ``trio.lowlevel.wait_readable`` on :attr:`fd`)."""
        return self._fd >= 0

    async def receive_some(self) -> bytes:
        """Up to ``RECEIVE_SIZE`` bytes from the client; ``b""`` at its end, or when the
        connection broke. A cancellation point before anything is read, as trio's are."""
        fd = self._fd
        if fd < 0:
            return await self._receive_from_stream()
        await trio.lowlevel.checkpoint_if_cancelled()
        data = _read_now(fd)
        if data is not None:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        while data is None:
            try:
                await trio.lowlevel.wait_readable(fd)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return b""
            data = _read_now(fd)
        return data

    async def _receive_from_stream(self) -> bytes:
        try:
            return bytes(await self._stream.receive_some(RECEIVE_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""


def _read_now(fd: int) -> bytes | None:
    """What the socket holds now, ``None`` if nothing (``b""`` at the end, or when the connection
    broke). A function of its own, so that no exception is alive while the reader waits."""
    try:
        return os.read(fd, RECEIVE_SIZE)
    except BlockingIOError:
        return None
    except OSError:
        return b""
