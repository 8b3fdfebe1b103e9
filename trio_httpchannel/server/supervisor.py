"""Worker processes: a supervisor that starts, restarts and reloads them, and a worker's side.

:class:`Supervisor` runs several servers (``--workers``, ``--reload``) in worker processes that
inherit the listening sockets, so a restarted worker takes over the same accept queue and no
connection is refused while it starts. :class:`WorkerHandoff` is what a worker receives.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

import trio

from .serving import DEFAULT_GRACEFUL_TIMEOUT
from .watchers import Watcher, run_beside, watch_signals

__all__ = ["Supervisor", "WorkerFailed", "WorkerHandoff"]

logger = logging.getLogger("trio_httpchannel")

_RESTART_INTERVAL = 1.0
_WORKER_EXIT_MARGIN = 5.0


class WorkerFailed(Exception):
    """A worker process exited before it was ready to serve: the application failed to load or
    to start, and restarting it would fail the same way."""


class Supervisor:
    """Runs workers: one process per group of ``socket_groups``, each inheriting its group's
    listening sockets, started by ``command`` and handed ``config`` (see :class:`WorkerHandoff`).

    A worker that stops on its own with status 0 (retiring after ``--limit-max-requests``, or
    sent SIGTERM by someone else) is replaced at once; one that fails is restarted at most once
    a second. Meanwhile its listening sockets stay open here, so connections wait for the
    replacement instead of being refused. With
    ``reload_dirs``, a change to a Python file under them restarts every worker; a worker that then
    fails to start is retried at the next change. SIGINT or SIGTERM is forwarded to the workers as
    SIGTERM and waited for (each drains its connections within ``graceful_timeout``); a second
    signal kills them and raises ``KeyboardInterrupt``. On that first signal the supervisor
    closes its own copies of the listening sockets, so that once the workers have accepted
    what waits in the backlog and closed theirs, new connections are refused at once. Workers run in their own session, so a
    Ctrl-C in the terminal reaches only the supervisor, which decides.
    """

    def __init__(
        self,
        command: Sequence[str],
        config: object,
        socket_groups: Sequence[Sequence[socket.socket]],
        *,
        graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
        reload_dirs: Sequence[str] = (),
    ) -> None:
        self._command = list(command)
        self._config = config
        self._groups = socket_groups
        self._graceful_timeout = graceful_timeout
        self._reload_dirs = list(reload_dirs)
        self._workers: dict[int, trio.Process] = {}
        self._started_at: dict[int, float] = {}
        self._restarting: set[trio.Process] = set()
        self._changed = trio.Event()
        self._stop_watching = trio.Event()
        self._stopping = False
        self._slots: trio.CancelScope | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the workers, report ``started`` when all are ready, keep them running until a
        signal, then stop them. Raises :class:`WorkerFailed` if one fails to start at first."""
        watchers: list[Watcher] = []
        with trio.CancelScope() as forced:
            watchers.append(partial(watch_signals, partial(self._on_signal, forced)))
            if self._reload_dirs:
                watchers.append(self._watch_changes)
            try:
                await run_beside(partial(self._run_workers, task_status), watchers)
            finally:
                self._stop_watching.set()
                await self._kill_all()
        if forced.cancelled_caught:
            raise KeyboardInterrupt

    def _on_signal(self, forced: trio.CancelScope, name: str) -> None:
        if self._stopping:
            logger.warning("%s again: killing the workers", name)
            forced.cancel()
            return
        logger.info("%s received: stopping the workers (send it again to kill them)", name)
        self._stopping = True
        self._stop_watching.set()
        self._close_sockets()
        for process in self._workers.values():
            process.send_signal(signal.SIGTERM)
        if self._slots is not None:
            self._slots.deadline = trio.current_time() + self._graceful_timeout + _WORKER_EXIT_MARGIN

    def _close_sockets(self) -> None:
        """Close our copies of the listening sockets, so that each closes for good when the
        last worker closes its own: from then on new connections are refused, not queued."""
        for group in self._groups:
            for sock in group:
                sock.close()

    async def _run_workers(self, task_status: trio.TaskStatus[None]) -> None:
        with trio.CancelScope() as self._slots:
            try:
                for slot in range(len(self._groups)):
                    await self._start(slot)
            except WorkerFailed:
                if self._stopping:
                    return
                raise
            task_status.started()
            async with trio.open_nursery() as nursery:
                for slot in self._workers:
                    nursery.start_soon(self._keep, slot)

    async def _keep(self, slot: int) -> None:
        """Keep ``slot``'s worker running until shutdown."""
        while True:
            process = self._workers[slot]
            status = await process.wait()
            if process.stdin is not None:
                await process.stdin.aclose()
            if self._stopping:
                _log_exit(slot, process, status)
                return
            if process in self._restarting:
                self._restarting.discard(process)
            elif status == 0:
                logger.info("worker %d (pid %d) stopped on its own; starting its replacement", slot + 1, process.pid)
            else:
                logger.error("worker %d (pid %d) exited with status %s; restarting it", slot + 1, process.pid, status)
                await trio.sleep_until(self._started_at[slot] + _RESTART_INTERVAL)
            await self._restart(slot)

    async def _restart(self, slot: int) -> None:
        """Start ``slot``'s worker again; after a failed start, retry at the next change when
        reloading (the code is broken until edited), else a second later."""
        while not self._stopping:
            changed = self._changed
            try:
                await self._start(slot)
                return
            except WorkerFailed as failure:
                logger.error("%s", failure)
            if self._reload_dirs:
                await changed.wait()
            else:
                await trio.sleep(_RESTART_INTERVAL)

    async def _start(self, slot: int) -> None:
        """Start a new worker for ``slot``; return once it accepts connections."""
        if self._stopping:
            raise WorkerFailed(f"worker {slot + 1} was not started: the supervisor is stopping")
        sockets = self._groups[slot]
        fds = [sock.fileno() for sock in sockets]
        ready_read, ready_write = os.pipe()
        handoff = {"fds": fds, "ready_fd": ready_write, "worker": slot + 1, "config": self._config}
        try:
            process = await trio.lowlevel.open_process(
                self._command, stdin=subprocess.PIPE, pass_fds=(*fds, ready_write), start_new_session=True
            )
        finally:
            os.close(ready_write)
        self._workers[slot] = process
        self._started_at[slot] = trio.current_time()
        assert process.stdin is not None
        async with trio.lowlevel.FdStream(ready_read) as ready:
            try:
                await process.stdin.send_all(json.dumps(handoff).encode() + b"\n")
            except trio.BrokenResourceError:
                pass
            if not await ready.receive_some(1):
                status = await process.wait()
                raise WorkerFailed(f"worker {slot + 1} exited with status {status} before it was ready to serve")

    async def _watch_changes(self, *, task_status: trio.TaskStatus[None]) -> None:
        import watchfiles

        task_status.started()
        async for changes in watchfiles.awatch(
            *self._reload_dirs, watch_filter=watchfiles.PythonFilter(), stop_event=self._stop_watching
        ):
            paths = sorted({os.path.relpath(path) for _, path in changes})  # noqa: ASYNC240 (string arithmetic, no I/O)
            logger.warning("%s changed: restarting the workers", ", ".join(paths))
            self._changed.set()
            self._changed = trio.Event()
            for process in self._workers.values():
                if process.returncode is None:
                    self._restarting.add(process)
                    process.send_signal(signal.SIGTERM)

    async def _kill_all(self) -> None:
        with trio.CancelScope(shield=True):
            for slot, process in self._workers.items():
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                    logger.warning("worker %d (pid %d) was killed", slot + 1, process.pid)


def _log_exit(slot: int, process: trio.Process, status: int) -> None:
    if status == 0:
        logger.info("worker %d (pid %d) stopped", slot + 1, process.pid)
    else:
        logger.warning("worker %d (pid %d) stopped with status %d", slot + 1, process.pid, status)


class WorkerHandoff:
    """A worker's side of :class:`Supervisor`: the ``config`` it was given, its inherited
    listening ``sockets``, :meth:`ready` to report that it accepts, and :meth:`orphaned`, which
    returns when the supervisor is gone (its end of our stdin closed), whatever killed it."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.config: Any = data["config"]
        self.number: int = data["worker"]
        self.sockets = [socket.socket(fileno=fd) for fd in data["fds"]]
        self._ready_fd: int | None = data["ready_fd"]

    @classmethod
    def receive(cls) -> WorkerHandoff:
        """Read the handoff the supervisor wrote to this process's stdin."""
        return cls(json.loads(sys.stdin.buffer.readline()))

    def ready(self) -> None:
        if self._ready_fd is not None:
            os.write(self._ready_fd, b"r")
            os.close(self._ready_fd)
            self._ready_fd = None

    async def orphaned(self) -> None:
        async with trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())) as lifeline:
            while await lifeline.receive_some(1024):
                pass
