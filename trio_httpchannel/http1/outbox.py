"""What one connection writes: responses queued in order, coalesced into one write, bounded by
``send_timeout``, and the access record of each response once it is written or cut short."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import trio

from .._access import ResponseRecord
from .._exchange import Exchange
from .._request import Address
from .._state import SENT
from .wire import Wire

__all__ = ["Outbox"]

logger = logging.getLogger("trio_httpchannel")

COALESCE_LIMIT = 16384
"""Queued bytes past which a response is written without waiting for the next one."""


class Outbox:
    """The bytes of one connection on their way out. Whoever writes (the writer, or the handler
    task of a lone request) queues with :meth:`put`, in response order, and writes with
    :meth:`flush`, one write at a time.

    A write the socket does not take at once may wait ``send_timeout`` for the client to read;
    the deadline is the connection nursery's (``deadline_scope``), so its expiry ends the whole
    connection, whichever task was writing. A failed write aborts the connection (``abort``).

    With a ``hook``, each response whose head was queued (:meth:`started`) gets exactly one
    :class:`ResponseRecord`: once its last byte is written, or, when the connection ends first,
    marked cut short (:meth:`cut_short`)."""

    __slots__ = (
        "_wire",
        "_send_timeout",
        "_abort",
        "_hook",
        "_client",
        "_data",
        "size",
        "flushing",
        "_flushed",
        "_going_out",
        "deadline_scope",
    )

    def __init__(
        self,
        wire: Wire,
        send_timeout: float,
        abort: Callable[[str], None],
        hook: Callable[[ResponseRecord], None] | None,
        client: Address,
    ) -> None:
        self._wire = wire
        self._send_timeout = send_timeout
        self._abort = abort
        self._hook = hook
        self._client = client
        self._data: list[bytes] = []
        self.size = 0
        self.flushing = False
        self._flushed: trio.Event | None = None
        self._going_out: list[Exchange[Any]] | None = [] if hook is not None else None
        """The responses under way, for their records (none without a hook: a list costs every
        connection 56 bytes, idle ones too)."""
        self.deadline_scope: trio.CancelScope | None = None

    @property
    def idle(self) -> bool:
        """Whether nothing is queued or being written."""
        return not self._data and not self.flushing

    def put(self, exchange: Exchange[Any] | None, data: bytes) -> None:
        """Queue ``data`` (of ``exchange``'s response) after everything queued before it."""
        self._data.append(data)
        self.size += len(data)
        if exchange is not None:
            exchange.sent_pending += len(data)

    async def send(self, exchange: Exchange[Any] | None, data: bytes) -> None:
        """Write ``data`` now, after whatever was queued before it."""
        self.put(exchange, data)
        await self.flush()

    async def flush(self) -> None:
        """Write what is queued, in one write: at once when the socket takes it (no scheduler
        pass, the common case), else waiting up to ``send_timeout``. One write at a time: a
        second task flushing meanwhile (the writer, while a lone exchange's handler still
        writes the response before) waits for it, then writes what is queued after. A task
        cancelled (its connection aborted) writes nothing: without the scheduler pass that
        would be noticed only after the write."""
        while self.flushing:
            if self._flushed is None:
                self._flushed = trio.Event()
            await self._flushed.wait()
        if not self._data:
            return
        await trio.lowlevel.checkpoint_if_cancelled()
        data = self._data[0] if len(self._data) == 1 else b"".join(self._data)
        self._data.clear()
        self.size = 0
        self.flushing = True
        try:
            written = self._wire.write_at_once(data)
            if written < len(data):
                await self._write_waiting(data, written)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            self.cut_short()
            self._abort(f"writing failed: {error!r}")
            await trio.lowlevel.checkpoint()
        finally:
            self._flush_over()
        if self._hook is not None:
            self._written()

    @property
    def can_sendfile(self) -> bool:
        """Whether :meth:`send_file` can be used: the kernel copies files to this stream."""
        return self._wire.can_sendfile

    async def send_file(self, exchange: Exchange[Any], fd: int, count: int) -> int:
        """Write what is queued, then the first ``count`` bytes of the file ``fd`` by the kernel
        (``os.sendfile``), as much at a time as the socket takes, waiting up to ``send_timeout``
        each time it takes nothing; the bytes of the file sent, fewer when it ended first. A
        failed write aborts the connection, as in :meth:`flush`."""
        await self.flush()
        self.flushing = True
        offset = 0
        try:
            while offset < count:
                try:
                    sent = self._wire.sendfile_at_once(fd, offset, count - offset)
                except BlockingIOError:
                    await self._wait_writable()
                    continue
                if not sent:
                    break
                offset += sent
                exchange.sent += sent
                await trio.lowlevel.checkpoint()
        except OSError as error:
            self.cut_short()
            self._abort(f"sending a file failed: {error!r}")
            await trio.lowlevel.checkpoint()
        finally:
            self._flush_over()
        return offset

    def _flush_over(self) -> None:
        """A write of :meth:`flush` or :meth:`send_file` ended: who waits for it goes on."""
        self.flushing = False
        if self._flushed is not None:
            self._flushed.set()
            self._flushed = None

    async def _wait_writable(self) -> None:
        scope = self.deadline_scope
        assert scope is not None
        scope.deadline = trio.current_time() + self._send_timeout
        await self._wire.wait_writable()
        scope.deadline = math.inf

    async def _write_waiting(self, data: bytes, written: int) -> None:
        scope = self.deadline_scope
        assert scope is not None
        scope.deadline = trio.current_time() + self._send_timeout
        await self._wire.write_rest(data, written)
        scope.deadline = math.inf

    # The access records -------------------------------------------------------------------------

    def started(self, exchange: Exchange[Any]) -> None:
        """``exchange``'s head is serialized: its response started to go out."""
        if self._going_out is not None:
            self._going_out.append(exchange)

    def finished(self, exchange: Exchange[Any]) -> None:
        """Every byte of ``exchange``'s response is queued: record it if they are written."""
        going_out = self._going_out
        if going_out is not None and not exchange.sent_pending and exchange in going_out:
            going_out.remove(exchange)
            self._record(exchange, complete=True)

    def cut_short(self) -> None:
        """The connection ends: responses that started to go out and are not whole are
        recorded as cut short."""
        going_out = self._going_out
        if going_out:
            self._going_out = []
            for exchange in going_out:
                self._record(exchange, complete=False)

    def _written(self) -> None:
        """The queue went out: its bytes count as sent, and responses now whole are recorded."""
        going_out = self._going_out
        assert going_out is not None
        for exchange in going_out:
            exchange.sent += exchange.sent_pending
            exchange.sent_pending = 0
        if going_out:
            self._going_out = [exchange for exchange in going_out if exchange.progress is not SENT]
            for exchange in going_out:
                if exchange.progress is SENT:
                    self._record(exchange, complete=True)

    def _record(self, exchange: Exchange[Any], *, complete: bool) -> None:
        assert self._hook is not None
        record = ResponseRecord(
            client=self._client,
            request=exchange.request,
            status=exchange.status,
            sent=exchange.sent,
            seconds=trio.current_time() - exchange.started,
            complete=complete,
        )
        try:
            self._hook(record)
        except Exception:
            logger.exception("the on_response hook failed on %r", record)
