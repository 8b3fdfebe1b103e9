"""The frames one WebSocket writes, in one order, mostly without a task of their own.

A frame is written by the task that makes it (the handler sending, the reader answering a ping),
at once, when nothing is queued before it and the socket takes it whole: no scheduler pass and
no task in between, as the HTTP/1.1 channel's lone request writes its own answer. What the
socket does not take (a client that reads slowly; any stream other than a plain socket, TLS
say) is queued, in order, and a writer task writes it, waiting at most ``send_timeout`` for each
frame; the task ends when the queue is empty. So frames leave in the order they were encoded
(which permessage-deflate needs: the client inflates them in that order) and a frame is queued
whole or not at all: whoever made it may be cancelled without harm to the stream.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ..http1.wire import Wire

__all__ = ["Outbox"]


class Outbox:
    """One WebSocket's frames on their way to the client.

    ``nursery`` is where the writer task runs (frames queued before there is one are written
    from then on). ``abort`` is called once when a write fails or the client takes
    nothing for ``send_timeout``: the connection cannot go on.
    """

    __slots__ = (
        "_abort",
        "_closed",
        "_failed",
        "_queue",
        "_room",
        "_send_timeout",
        "_wire",
        "_writer",
        "_writing",
        "nursery",
        "sent",
    )

    def __init__(self, stream: trio.abc.Stream, send_timeout: float, abort: Callable[[str], None]) -> None:
        self._wire = Wire(stream)
        self._send_timeout = send_timeout
        self._abort = abort
        self._queue: list[bytes] = []
        self._writing = False
        self._failed = False
        self._closed = False
        self._room: trio.lowlevel.ParkingLot | None = None
        self._writer: trio.CancelScope | None = None
        self.nursery: trio.Nursery | None = None
        self.sent = 0
        """Bytes written to the client so far."""

    @property
    def waiting(self) -> bool:
        """Whether a frame waits for the writer task (besides the one it may be writing): who
        makes another frame waits first (:meth:`wait_for_room`), as the reader does before it
        reads on, so a client that does not read cannot make the queue grow."""
        return bool(self._queue)

    @property
    def empty(self) -> bool:
        """Whether every frame was written whole."""
        return not self._queue and not self._writing and not self._failed

    def write(self, data: bytes) -> None:
        """Write ``data`` after every frame before it: at once if the socket takes it, else
        (what it does not take) queued for the writer task."""
        if self._failed or self._closed:
            return
        if not self._queue and not self._writing:
            try:
                written = self._wire.write_at_once(data)
            except OSError as error:
                self._fail(f"writing failed: {error!r}")
                return
            self.sent += written
            if written == len(data):
                return
            data = data[written:]
        self._queue.append(data)
        self.start_writer()

    def start_writer(self) -> None:
        """Start the writer task if frames are queued and none runs (and the nursery is there)."""
        if self._queue and not self._writing and self.nursery is not None:
            self._writing = True
            self.nursery.start_soon(self._write_queued)

    async def wait_for_room(self) -> None:
        """Return once no frame waits for the writer task (at once if none does)."""
        while self._queue and not (self._failed or self._closed):
            await self._park()

    async def wait_written(self) -> None:
        """Return once every frame is written (or none can be any more)."""
        while (self._queue or self._writing) and not (self._failed or self._closed):
            await self._park()

    async def _park(self) -> None:
        if self._room is None:
            self._room = trio.lowlevel.ParkingLot()
        await self._room.park()

    async def linger(self, deadline: float) -> None:
        """After our close frame: half-close, then read until the client closes its end or
        ``deadline`` passes (closing with unread bytes would make the kernel reset the
        connection, which can destroy the close frame in flight)."""
        await self._wire.linger(deadline - trio.current_time())

    def close(self) -> None:
        """The connection is over: nothing more is written (the writer task is cancelled), and
        who waits for room wakes."""
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
        self._wake()

    async def _write_queued(self) -> None:
        """The writer task: write the queued frames in order, each within ``send_timeout``.
        Cancelled (by :meth:`close`) in the middle of a frame, it leaves ``_writing`` set: that
        frame is not out."""
        with trio.CancelScope() as self._writer:
            queue = self._queue
            while queue and not self._closed:
                data = queue.pop(0)
                if not queue:
                    self._wake()
                with trio.move_on_after(self._send_timeout) as waiting:
                    try:
                        await self._wire.write(data)
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
                        self._fail(f"writing failed: {error!r}")
                        return
                if waiting.cancelled_caught:
                    self._fail("the client did not read within send_timeout")
                    return
                self.sent += len(data)
            self._writing = False
            self._wake()
        self._writer = None

    def _fail(self, why: str) -> None:
        self._failed = True
        self._wake()
        self._abort(why)

    def _wake(self) -> None:
        if self._room is not None:
            self._room.unpark_all()
