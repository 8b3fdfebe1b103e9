"""The stream of one connection, byte by byte: reading, writing without a scheduler pass when
the socket is ready, and the lingering close."""

from __future__ import annotations

import os
from collections.abc import Awaitable

import trio

__all__ = ["Wire"]

RECEIVE_SIZE = 65536
_HAS_SENDFILE = hasattr(os, "sendfile")


class Wire:
    """Reads and writes one connection's stream. On a plain TCP or Unix socket on POSIX it uses
    ``os.read`` and ``os.write`` on the socket's descriptor and waits through trio only when the
    socket is not ready: that skips the stream's per-call bookkeeping and, for the common small
    response, trio's scheduler pass (together a quarter of a small request's cost). Only one task
    reads and one writes at a time, never after ``send_eof`` or the close, so that bookkeeping
    has nothing to catch. Errors are trio's or ``OSError``; both mean the client is gone.

    The wait for a readable socket is outside the ``except`` clause: a coroutine suspended in
    one keeps the exception being handled (and its traceback), 500 bytes an idle connection."""

    __slots__ = ("stream", "_socket", "_fd", "_drained")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._socket = stream.socket if type(stream) is trio.SocketStream else None
        self._fd = self._socket.fileno() if self._socket is not None and os.name == "posix" else -1
        self._drained = False
        """Whether the last read took less than it asked for: the socket is then empty, almost
        always, and the next read waits for it first instead of failing with an exception."""

    async def receive_some(self) -> bytes | bytearray:
        """Up to ``RECEIVE_SIZE`` bytes from the client, ``b""`` at its end."""
        fd = self._fd
        if fd < 0:
            return await self.stream.receive_some(RECEIVE_SIZE)
        if self._drained:
            await trio.lowlevel.wait_readable(fd)
        while True:
            try:
                data = os.read(fd, RECEIVE_SIZE)
            except BlockingIOError:
                pass
            else:
                self._drained = len(data) < RECEIVE_SIZE
                return data
            await trio.lowlevel.wait_readable(fd)

    def expect_bytes(self) -> None:
        """The client may have sent since the last read (it was answered): the next read tries
        before it waits."""
        self._drained = False

    def wait_for_bytes(self) -> Awaitable[bytes | bytearray | None]:
        """Wait until the client sent something (or ended its side). On a socket nothing is
        read (``None``: :meth:`receive_ready` reads it); on other streams it is the bytes read,
        ``b""`` at the client's end. (Not a coroutine of its own: the wait of an idle connection
        keeps one frame less.)"""
        fd = self._fd
        if fd < 0:
            return self.stream.receive_some(RECEIVE_SIZE)
        return trio.lowlevel.wait_readable(fd)  # noqa: ASYNC105 (awaited by the caller)

    def receive_ready(self) -> bytes | None:
        """What a socket that :meth:`wait_for_bytes` found readable has (``b""`` at the client's
        end); ``None`` when it has nothing after all."""
        try:
            data = os.read(self._fd, RECEIVE_SIZE)
        except BlockingIOError:
            return None
        self._drained = len(data) < RECEIVE_SIZE
        return data

    def write_at_once(self, data: bytes) -> int:
        """Write what the socket takes without waiting; the bytes written (0 on other streams)."""
        if self._fd < 0:
            return 0
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return 0

    async def write(self, data: bytes) -> None:
        """Write ``data`` whole, waiting for the client to read when the socket is full."""
        written = self.write_at_once(data)
        if written < len(data):
            await self.write_rest(data, written)

    async def write_rest(self, data: bytes, written: int) -> None:
        """Write ``data`` from ``written`` on, waiting for the client to read."""
        sock = self._socket
        if sock is None:
            await self.stream.send_all(data[written:])
            return
        with memoryview(data) as view:
            while written < len(view):
                written += await sock.send(view[written:])

    @property
    def can_sendfile(self) -> bool:
        """Whether the kernel can copy a file to this stream (``os.sendfile``): a plain TCP or
        Unix socket on POSIX, not TLS (whose bytes Python encrypts)."""
        return self._fd >= 0 and _HAS_SENDFILE

    def sendfile_at_once(self, fd: int, offset: int, count: int) -> int:
        """Have the kernel copy up to ``count`` bytes of the file ``fd`` from ``offset`` to the
        socket, as much as it takes without waiting: the bytes copied, 0 when the file ended.
        Raises ``BlockingIOError`` when the socket is full. Only where :attr:`can_sendfile`."""
        return os.sendfile(self._fd, fd, offset, count)

    async def wait_writable(self) -> None:
        """Wait until the socket takes more (only where :attr:`can_sendfile`)."""
        await trio.lowlevel.wait_writable(self._fd)

    async def linger(self, seconds: float) -> None:
        """Half-close, then read and discard until the client closes or ``seconds`` pass, so
        that unread request bytes cannot make the kernel reset away our last response. TLS
        cannot half-close: there the end is TLS's close_notify, sent at once (a close-delimited
        body ends with it), and the wait is for the client's own, discarding what it still sends."""
        stream = self.stream
        with trio.move_on_after(seconds):
            try:
                if isinstance(stream, trio.SSLStream):
                    await stream.unwrap()
                    return
                if isinstance(stream, trio.abc.HalfCloseableStream):
                    await stream.send_eof()
                while await stream.receive_some(RECEIVE_SIZE):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                pass
