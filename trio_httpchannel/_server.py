"""Serving a channel: listening sockets, a connection limit, graceful shutdown, worker processes.

The only module that owns listening sockets, signals and processes. :func:`serve` runs one
process's server; :class:`Supervisor` runs several of them (``--workers``, ``--reload``) in
worker processes that inherit the listening sockets, so a restarted worker takes over the same
accept queue and no connection is refused while it starts.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from functools import partial
from typing import Any

import outcome
import trio

from ._channel import Handler, HTTPChannel
from ._response import error_response, serialize_head

__all__ = ["DEFAULT_GRACEFUL_TIMEOUT", "Server", "Supervisor", "WorkerFailed", "WorkerHandoff", "bind", "serve"]

logger = logging.getLogger("trio_httpchannel")

DEFAULT_GRACEFUL_TIMEOUT = 25.0
"""Seconds in-flight requests get to finish after a shutdown signal: less than the 30 s that
Kubernetes and systemd wait before SIGKILL, leaving time for the application's own shutdown."""

_BACKLOG = socket.SOMAXCONN
_REFUSE_LINGER = 2.0
_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_FIRST_BACKOFF = 0.01
_LAST_BACKOFF = 1.0
_RESTART_INTERVAL = 1.0
_WORKER_EXIT_MARGIN = 5.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM)

Watcher = Callable[..., Awaitable[None]]


# Listening sockets -----------------------------------------------------------------------------


def bind(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    uds: str | None = None,
    fd: int | None = None,
    reuse_port: bool = False,
) -> list[socket.socket]:
    """Listening sockets: the inherited socket ``fd`` if given, else a Unix socket at ``uds``,
    else TCP on every address ``host`` resolves to (``""`` for all interfaces).

    ``reuse_port`` sets ``SO_REUSEPORT``, so that several processes can each bind the port and
    the kernel spreads connections over them. Port 0 picks a free port, the same one for every
    address. Raises ``OSError``.
    """
    if fd is not None:
        return [_adopt(fd)]
    if uds is not None:
        return [_bind_unix(uds)]
    return _bind_tcp(host, port, reuse_port)


def reuse_port_balances() -> bool:
    """Whether ``SO_REUSEPORT`` spreads connections over the processes sharing a port (Linux);
    elsewhere it exists with other meanings, and workers share one socket instead."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _adopt(fd: int) -> socket.socket:
    sock = socket.socket(fileno=fd)
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise OSError(errno.ENOTSOCK, f"file descriptor {fd} is not a stream socket")
    sock.listen(_BACKLOG)
    return sock


def _bind_unix(path: str) -> socket.socket:
    _remove_stale_socket_file(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _remove_stale_socket_file(path: str) -> None:
    """Remove a socket file that nobody listens on (left by a server that died); a live one is
    another server's, and binding will fail with 'address already in use'."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except FileNotFoundError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)


def _bind_tcp(host: str, port: int, reuse_port: bool) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            _set_options(sock, reuse_port)
            if sockets[0] is not sock:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(_BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _set_options(sock: socket.socket, reuse_port: bool) -> None:
    if os.name != "nt":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)


def url(sock: socket.socket, *, tls: bool = False) -> str:
    """Where ``sock`` listens, as a clickable ``http(s)://host:port`` or ``unix:PATH``."""
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{address}"
    host = f"[{address[0]}]" if sock.family == socket.AF_INET6 else address[0]
    return f"{'https' if tls else 'http'}://{host}:{address[1]}"


def close_sockets(sockets: Sequence[socket.socket], uds: str | None) -> None:
    """Close listening sockets, and remove the socket file ``uds`` that :func:`bind` made."""
    for sock in sockets:
        sock.close()
    if uds is not None:
        try:
            os.unlink(uds)
        except FileNotFoundError:
            pass


# One process's server --------------------------------------------------------------------------


class Server:
    """Serves one :class:`HTTPChannel` on listeners until :meth:`shutdown`, then drains.

    ``max_connections`` bounds the connections served at once: past it a new connection is
    answered ``503`` with ``Connection: close`` and closed, so its client learns at once that the
    server is busy instead of waiting in a queue it cannot see (the seed's ``maxRequests``).
    ``ssl_context`` makes every connection TLS (``trio.SSLStream``). Running out of file
    descriptors at accept is logged once and retried with backoff while existing connections
    go on being served: it is a load problem, not a reason to stop.
    """

    def __init__(
        self,
        handler: Handler | HTTPChannel,
        *,
        max_connections: int | None = None,
        graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections is not None and (isinstance(max_connections, bool) or max_connections < 1):
            raise ValueError(f"max_connections must be a positive integer or None, got {max_connections!r}")
        if not graceful_timeout >= 0:
            raise ValueError(f"graceful_timeout must be a number of seconds >= 0, got {graceful_timeout!r}")
        self.channel = handler if isinstance(handler, HTTPChannel) else HTTPChannel(handler)
        self.max_connections = max_connections
        self.graceful_timeout = graceful_timeout
        self.ssl_context = ssl_context
        self._stop = trio.Event()
        self._active = 0
        self._refusing = False
        self._accept_failing = False

    @property
    def connection_count(self) -> int:
        """Connections being served now (not counting refused ones)."""
        return self._active

    @property
    def stopping(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._stop.is_set()

    def shutdown(self) -> None:
        """Stop accepting and let open connections finish (idle ones close at once) within
        ``graceful_timeout``; :meth:`serve_listeners` returns when they are done."""
        self._stop.set()

    async def serve_listeners(
        self,
        listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
        *,
        task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept on ``listeners`` until :meth:`shutdown`; then close them, wait for the open
        connections for up to ``graceful_timeout``, abort the rest, and return."""
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as acceptors:
                for listener in listeners:
                    acceptors.start_soon(self._accept, listener, connections)
                task_status.started(self)
                await self._stop.wait()
                acceptors.cancel_scope.cancel()
            for listener in listeners:
                await trio.aclose_forcefully(listener)
            logger.info(
                "shutting down: waiting up to %gs for %d open connection(s)", self.graceful_timeout, self._active
            )
            self.channel.shutdown()
            connections.cancel_scope.deadline = trio.current_time() + self.graceful_timeout
        if connections.cancel_scope.cancelled_caught:
            logger.warning("graceful_timeout (%gs) passed: the connections still open were aborted", self.graceful_timeout)

    async def _accept(self, listener: trio.abc.Listener[trio.abc.Stream], connections: trio.Nursery) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            try:
                stream = await listener.accept()
            except OSError as error:
                if error.errno not in _ACCEPT_CAPACITY_ERRNOS:
                    raise
                self._note_accept_failure(error)
                await trio.sleep(backoff)
                backoff = min(2 * backoff, _LAST_BACKOFF)
                continue
            if self._accept_failing:
                self._accept_failing = False
                logger.warning("accepting connections again")
            backoff = _FIRST_BACKOFF
            connections.start_soon(self._serve_connection, stream)

    def _note_accept_failure(self, error: OSError) -> None:
        if self._accept_failing:
            return
        self._accept_failing = True
        logger.error(
            "cannot accept connections: %s (%d open); retrying with backoff while serving the open ones. "
            "Raise the open-files limit (ulimit -n) or set max_connections below it.",
            error.strerror or error,
            self._active,
        )

    async def _serve_connection(self, stream: trio.abc.Stream) -> None:
        if self.ssl_context is not None:
            stream = trio.SSLStream(stream, self.ssl_context, server_side=True, https_compatible=True)
        if self.max_connections is not None and self._active >= self.max_connections:
            await self._refuse(stream)
            return
        if self._refusing:
            self._refusing = False
            logger.warning("below max_connections again: accepting new connections")
        self._active += 1
        try:
            await self.channel(stream)
        finally:
            self._active -= 1

    async def _refuse(self, stream: trio.abc.Stream) -> None:
        """Answer 503 without reading a request, then close as a lingering close would, briefly."""
        if not self._refusing:
            self._refusing = True
            logger.warning("max_connections (%d) reached: answering new connections 503", self.max_connections)
        response = error_response(503, "the server is at its connection limit; try again shortly")
        response.headers.append((b"retry-after", b"1"))
        assert isinstance(response.body, bytes)
        head = serialize_head(response, method="GET", http_version="1.1", keep_alive=False)
        with trio.move_on_after(_REFUSE_LINGER):
            try:
                await stream.send_all(head.data + response.body)
                if isinstance(stream, trio.abc.HalfCloseableStream):
                    await stream.send_eof()
                while await stream.receive_some(65536):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        await trio.aclose_forcefully(stream)


async def serve(
    handler: Handler | HTTPChannel,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    uds: str | None = None,
    fd: int | None = None,
    sockets: Sequence[socket.socket] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    max_connections: int | None = None,
    graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
    lifespan: AbstractAsyncContextManager[object] | None = None,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    handle_signals: bool = True,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` (or a ready :class:`HTTPChannel`) until SIGINT or SIGTERM, then shut
    down gracefully (see :class:`Server`) and return.

    Listens on ``sockets`` when given (they stay the caller's), else on :func:`bind`'s for
    ``host``/``port``, ``uds`` or ``fd``. ``lifespan`` (an ASGI ``Lifespan``, say) is entered
    after binding, so a busy port fails before the application starts, and exited after the last
    connection. ``shutdown_trigger``, when given, starts the graceful shutdown when it returns.
    A second signal aborts everything at once and raises ``KeyboardInterrupt``.
    ``task_status.started`` receives the :class:`Server` once it accepts.
    """
    server = Server(handler, max_connections=max_connections, graceful_timeout=graceful_timeout, ssl_context=ssl_context)
    owned = sockets is None
    if sockets is None:
        sockets = bind(host, port, uds=uds, fd=fd)
    watchers: list[Watcher] = []
    if shutdown_trigger is not None:
        watchers.append(partial(_shutdown_after, shutdown_trigger, server))
    try:
        with trio.CancelScope() as forced:
            if handle_signals:
                watchers.append(partial(_watch_signals, _first_then_force(server, forced)))
            await _run_beside(partial(_serve_app, server, sockets, lifespan, task_status), watchers)
    finally:
        if owned:
            close_sockets(sockets, uds if fd is None else None)
    if forced.cancelled_caught:
        raise KeyboardInterrupt


def _first_then_force(server: Server, forced: trio.CancelScope) -> Callable[[str], None]:
    """What a signal does to a server: shut it down gracefully, or at once when it already is."""

    def on_signal(name: str) -> None:
        if server.stopping:
            logger.warning("%s again: exiting at once, aborting %d connection(s)", name, server.connection_count)
            forced.cancel()
        else:
            logger.info("%s received (send it again to exit at once)", name)
            server.shutdown()

    return on_signal


async def _serve_app(
    server: Server,
    sockets: Sequence[socket.socket],
    lifespan: AbstractAsyncContextManager[object] | None,
    task_status: trio.TaskStatus[Server],
) -> None:
    listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(sock.dup())) for sock in sockets]
    async with lifespan if lifespan is not None else nullcontext():
        await server.serve_listeners(listeners, task_status=task_status)


async def _shutdown_after(trigger: Callable[[], Awaitable[object]], server: Server, *, task_status: trio.TaskStatus[None]) -> None:
    task_status.started()
    await trigger()
    server.shutdown()


async def _watch_signals(on_signal: Callable[[str], None], *, task_status: trio.TaskStatus[None]) -> None:
    with trio.open_signal_receiver(*_SIGNALS) as signals:
        task_status.started()
        async for number in signals:
            on_signal(signal.Signals(number).name)


async def _run_beside(body: Callable[[], Awaitable[None]], watchers: Sequence[Watcher]) -> None:
    """Run ``body`` with ``watchers`` (tasks that take ``task_status``) beside it, cancelled when
    it returns. ``body``'s exception propagates as it is, not in an ExceptionGroup, so that a
    caller can catch a ``LifespanError`` or an ``OSError``."""
    async with trio.open_nursery() as nursery:
        for watcher in watchers:
            await nursery.start(watcher)
        result = await outcome.acapture(body)
        nursery.cancel_scope.cancel()
    result.unwrap()


# Worker processes ------------------------------------------------------------------------------


class WorkerFailed(Exception):
    """A worker process exited before it was ready to serve: the application failed to load or
    to start, and restarting it would fail the same way."""


class Supervisor:
    """Runs workers: one process per group of ``socket_groups``, each inheriting its group's
    listening sockets, started by ``command`` and handed ``config`` (see :class:`WorkerHandoff`).

    A worker that exits on its own is restarted (at most once a second per worker). With
    ``reload_dirs``, a change to a Python file under them restarts every worker; a worker that then
    fails to start is retried at the next change. SIGINT or SIGTERM is forwarded to the workers as
    SIGTERM and waited for (each drains its connections within ``graceful_timeout``); a second
    signal kills them and raises ``KeyboardInterrupt``. Workers run in their own session, so a
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
            watchers.append(partial(_watch_signals, partial(self._on_signal, forced)))
            if self._reload_dirs:
                watchers.append(self._watch_changes)
            try:
                await _run_beside(partial(self._run_workers, task_status), watchers)
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
        for process in self._workers.values():
            process.send_signal(signal.SIGTERM)
        if self._slots is not None:
            self._slots.deadline = trio.current_time() + self._graceful_timeout + _WORKER_EXIT_MARGIN

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
            paths = sorted({os.path.relpath(path) for _, path in changes})
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
