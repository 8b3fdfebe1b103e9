"""A response body read from a file: its length known before the head is sent, its bytes sent
by the kernel (``os.sendfile``) on a plain socket, read and sent in chunks on any other stream."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator

import trio

__all__ = ["FileBody", "READ_SIZE"]

READ_SIZE = 65536
"""Bytes read from the file at a time where it cannot go to the socket by ``os.sendfile``."""


class FileBody:
    """The content of the regular file at ``path`` as a response body (``Response(200,
    body=FileBody(path))``; the ASGI adapter makes one for ``http.response.pathsend``).

    Making it checks the file at once, so that a file that is missing, unreadable or not a
    regular file raises ``OSError`` before anything is sent (a handler or app failing so gets
    its client a 500), and takes its size: the response's ``Content-Length``. The file is
    opened only when its response is sent, and closed when it is sent or will not be.

    On a plain TCP or Unix socket (not TLS) the channel has the kernel copy the file to the
    socket (``os.sendfile``: the bytes never enter Python), as much at a time as the socket
    takes; elsewhere (TLS, HTTP/2, memory streams) it is read in chunks of ``READ_SIZE`` bytes,
    each sent before the next is read. Either way a client that does not read is waited for
    under ``send_timeout``, with nothing piling up in memory. Reads are not sent to a thread:
    from the page cache each takes microseconds, as the kernel's own copy does; a file on a slow
    disk blocks the event loop while it is read, as ``sendfile`` would.

    A file that changes size after this was made does not change the ``Content-Length``: it is
    sent up to that length, and one that shrank meanwhile aborts the response (never a shorter
    body as if complete).
    """

    __slots__ = ("path", "size", "_fd")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        info = os.stat(self.path)
        if not stat.S_ISREG(info.st_mode):
            raise IsADirectoryError(f"not a regular file, cannot be sent as a response body: {self.path!r}")
        if not os.access(self.path, os.R_OK):
            raise PermissionError(f"the server may not read the file {self.path!r}")
        self.size = info.st_size
        self._fd = -1

    def __repr__(self) -> str:
        return f"<FileBody {self.path!r} {self.size} bytes>"

    def open(self) -> int:
        """The file's descriptor, opened on the first call. Raises ``OSError`` when the file
        cannot be opened (any more)."""
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        return self._fd

    def close(self) -> None:
        """Close the file, if it was opened; calling it again does nothing."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    async def aclose(self) -> None:
        """Close the file: the body will not be sent (``close_body``)."""
        self.close()
        await trio.lowlevel.checkpoint()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes up to ``size`` in chunks of at most ``READ_SIZE``, then closed; the
        chunks stop early when the file shrank."""
        try:
            fd = self.open()
            offset = 0
            while offset < self.size:
                data = os.pread(fd, min(READ_SIZE, self.size - offset), offset)
                if not data:
                    return
                offset += len(data)
                yield data
        finally:
            self.close()
