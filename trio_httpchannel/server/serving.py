"""Serving a channel in this process: a connection limit, graceful shutdown, signals.

:class:`Server` accepts on listeners and runs the channel on each connection; :func:`serve`
binds (or takes) the sockets, runs an application's lifespan around the server and stops it on
a signal or a trigger.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from functools import partial

import trio

from .._channel import HTTPChannel
from .._handling import Handler
from . import sealing
from .proxy_protocol import ProxyProtocol, read_proxy_header
from .sockets import bind, close_sockets
from .watchers import Watcher, run_beside, watch_signals

__all__ = ["DEFAULT_GRACEFUL_TIMEOUT", "Server", "serve"]

logger = logging.getLogger("trio_httpchannel")

DEFAULT_GRACEFUL_TIMEOUT = 25.0
"""Seconds in-flight requests get to finish after a shutdown signal: less than the 30 s that
Kubernetes and systemd wait before SIGKILL, leaving time for the application's own shutdown."""

_REFUSE_LINGER = 2.0
_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_FIRST_BACKOFF = 0.01
_LAST_BACKOFF = 1.0
_CONNECTION_TASK = "trio_httpchannel.server.serving.Server._serve_connection"
"""The name of every connection's task: the one trio would make, but one string for them all
(trio makes each task its own, 93 bytes an idle connection)."""


class Server:
    """Serves one :class:`HTTPChannel` on listeners until :meth:`shutdown`, then drains.

    ``max_connections`` bounds the connections served at once: past it a new connection is
    answered ``503`` with ``Connection: close`` and closed, so its client learns at once that the
    server is busy instead of waiting in a queue it cannot see (the seed's ``maxRequests``).
    ``ssl_context`` makes every connection TLS (``trio.SSLStream``; :func:`.tls_context` makes
    one as the command line does; the channel does the handshake). Running out of file
    descriptors at accept is logged once and retried with backoff while existing connections
    go on being served: it is a load problem, not a reason to stop.

    ``proxy_protocol`` makes every connection start with a PROXY protocol header from a trusted
    peer (see :mod:`.proxy_protocol`), read within the channel's ``header_timeout`` before TLS.

    At :meth:`shutdown` the listeners stop at once: the connections already waiting in their
    backlog are accepted (they will be answered, with ``Connection: close``), then the listening
    sockets are closed, so that a new connection is refused and its client or balancer goes
    elsewhere instead of waiting on a socket nobody accepts from. When closing them closes them
    for good (``exclusive``), they are sealed first (see :mod:`.sealing`): a connection whose
    handshake the kernel completed after the last accept would otherwise be reset by the close
    with its request sent (under load, when the process is preempted in between, a request lost
    behind a balancer); sealed, it is held back and then refused, and the balancer retries it.
    """

    def __init__(
        self,
        handler: Handler | HTTPChannel,
        *,
        max_connections: int | None = None,
        graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        proxy_protocol: ProxyProtocol | None = None,
    ) -> None:
        if max_connections is not None and (isinstance(max_connections, bool) or max_connections < 1):
            raise ValueError(f"max_connections must be a positive integer or None, got {max_connections!r}")
        if not graceful_timeout >= 0:
            raise ValueError(f"graceful_timeout must be a number of seconds >= 0, got {graceful_timeout!r}")
        self.channel = handler if isinstance(handler, HTTPChannel) else HTTPChannel(handler)
        self.max_connections = max_connections
        self.graceful_timeout = graceful_timeout
        self.ssl_context = ssl_context
        self.proxy_protocol = proxy_protocol
        self._stop = trio.Event()
        self._refusing = False
        self._accept_failing = False

    @property
    def connection_count(self) -> int:
        """Connections its channel is serving now (not counting refused ones): the channel's
        ``connection_count``."""
        return self.channel.connection_count

    @property
    def stopping(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._stop.is_set()

    def shutdown(self) -> None:
        """Stop accepting and let open connections finish (idle ones close at once) within
        ``graceful_timeout``; :meth:`serve_listeners` returns when they are done. The channel
        is told at once, so that a connection accepted from now on is answered once, with
        ``Connection: close``."""
        self._stop.set()
        self.channel.shutdown()

    async def serve_listeners(
        self,
        listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
        *,
        exclusive: bool = False,
        task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept on ``listeners`` until :meth:`shutdown`; then close them, wait for the open
        connections for up to ``graceful_timeout``, abort the rest, and return. ``exclusive``:
        nothing else holds the listeners' sockets (no other descriptor or process), so that they
        are sealed before their backlog is taken; never for shared ones, which would accept
        nothing more."""
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as acceptors:
                for listener in listeners:
                    acceptors.start_soon(self._accept, listener, connections)
                task_status.started(self)
                await self._stop.wait()
                acceptors.cancel_scope.cancel()
            open_before = self.connection_count
            waiting = 0
            for listener in listeners:
                for stream in _accept_backlog(listener, seal=exclusive):
                    connections.start_soon(self._serve_connection, stream, name=_CONNECTION_TASK)
                    waiting += 1
                await trio.aclose_forcefully(listener)
            logger.info(
                "shutting down: stopped listening; waiting up to %gs for %d open connection(s) and %d from the backlog",
                self.graceful_timeout,
                open_before,
                waiting,
            )
            connections.cancel_scope.deadline = trio.current_time() + self.graceful_timeout
        if connections.cancel_scope.cancelled_caught:
            logger.warning(
                "graceful_timeout (%gs) passed: the connections still open were aborted", self.graceful_timeout
            )

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
            connections.start_soon(self._serve_connection, stream, name=_CONNECTION_TASK)

    def _note_accept_failure(self, error: OSError) -> None:
        if self._accept_failing:
            return
        self._accept_failing = True
        logger.error(
            "cannot accept connections: %s (%d open); retrying with backoff while serving the open ones. "
            "Raise the open-files limit (ulimit -n) or set max_connections below it.",
            error.strerror or error,
            self.connection_count,
        )

    def _serve_connection(self, stream: trio.abc.Stream) -> Awaitable[None]:
        """What the task of an accepted connection runs: the channel's call itself when nothing
        comes before it (no PROXY header, no TLS, no connection limit), so that an idle
        connection's stack holds no frame of the server's (240 bytes); else ``_open_then_serve``."""
        if self.proxy_protocol is None and self.ssl_context is None and self.max_connections is None:
            return self.channel(stream)
        return self._open_then_serve(stream)

    async def _open_then_serve(self, stream: trio.abc.Stream) -> None:
        if self.proxy_protocol is not None:
            proxied = await read_proxy_header(stream, self.proxy_protocol, self.channel.settings.header_timeout)
            if proxied is None:
                return
            stream = proxied
        if self.ssl_context is not None:
            stream = trio.SSLStream(stream, self.ssl_context, server_side=True, https_compatible=True)
        if self.max_connections is not None and self.connection_count >= self.max_connections:
            await self._refuse(stream)
            return
        if self._refusing:
            self._refusing = False
            logger.warning("below max_connections again: accepting new connections")
        await self.channel(stream)

    async def _refuse(self, stream: trio.abc.Stream) -> None:
        """Answer 503 without reading a request, then close as a lingering close would, briefly."""
        if not self._refusing:
            self._refusing = True
            logger.warning("max_connections (%d) reached: answering new connections 503", self.max_connections)
        await self.channel.refuse(
            stream,
            503,
            "the server is at its connection limit; try again shortly",
            headers=[(b"retry-after", b"1")],
            linger=_REFUSE_LINGER,
        )


def _accept_backlog(listener: trio.abc.Listener[trio.abc.Stream], *, seal: bool) -> list[trio.abc.Stream]:
    """The connections waiting in the backlog of ``listener`` (a ``trio.SocketListener``, or
    any listener with such a ``socket``), accepted without blocking, so that closing it right
    after (with no checkpoint between) resets none of them; with ``seal``, once sealed, so that
    none can join them before the close (see :mod:`.sealing`)."""
    sock = getattr(listener, "socket", None)
    if not isinstance(sock, trio.socket.SocketType):
        return []
    streams: list[trio.abc.Stream] = []
    with socket.socket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno())) as listening:
        listening.setblocking(False)
        if seal:
            sealing.seal(listening)
        while True:
            try:
                connection, _ = listening.accept()
            except (BlockingIOError, InterruptedError):
                return streams
            except OSError as error:
                logger.warning("could not accept the connections waiting at shutdown: %s", error.strerror or error)
                return streams
            streams.append(trio.SocketStream(trio.socket.from_stdlib_socket(connection)))


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
    proxy_protocol: ProxyProtocol | None = None,
    own_sockets: bool = False,
    exclusive_sockets: bool = False,
    lifespan: AbstractAsyncContextManager[object] | None = None,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    handle_signals: bool = True,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` (or a ready :class:`HTTPChannel`) until SIGINT or SIGTERM, then shut
    down gracefully (see :class:`Server`) and return.

    Listens on ``sockets`` when given, else on :func:`bind`'s for ``host``/``port``, ``uds`` or
    ``fd``. The sockets it binds, and ``sockets`` with ``own_sockets``, are closed as soon as
    the shutdown begins, so that new connections are refused at once; ``sockets`` without
    ``own_sockets`` stay the caller's, and listening (the kernel queues connections on them)
    until the caller closes them. The sockets it binds from ``host``/``port`` or ``uds``, and
    ``sockets`` with ``own_sockets`` and ``exclusive_sockets`` (no other descriptor or process
    holds them), are sealed before their backlog is taken (see :class:`Server`); never ``fd``'s,
    which whoever gave it may keep listening on. ``proxy_protocol`` is :class:`Server`'s.
    ``lifespan`` (an ASGI ``Lifespan``, say) is entered after binding, so a busy port fails
    before the application starts, and exited after the last connection. ``shutdown_trigger``,
    when given, starts the graceful shutdown when it returns. A second signal aborts everything
    at once and raises ``KeyboardInterrupt``. ``task_status.started`` receives the
    :class:`Server` once it accepts.
    """
    server = Server(
        handler,
        max_connections=max_connections,
        graceful_timeout=graceful_timeout,
        ssl_context=ssl_context,
        proxy_protocol=proxy_protocol,
    )
    owned = sockets is None
    if sockets is None:
        sockets = bind(host, port, uds=uds, fd=fd)
    listeners = [_listener(sock, hand_over=owned or own_sockets) for sock in sockets]
    exclusive = (owned and fd is None) or (own_sockets and exclusive_sockets)
    watchers: list[Watcher] = []
    if shutdown_trigger is not None:
        watchers.append(partial(_shutdown_after, shutdown_trigger, server))
    try:
        with trio.CancelScope() as forced:
            if handle_signals:
                watchers.append(partial(watch_signals, _first_then_force(server, forced)))
            serving = partial(_serve_app, server, listeners, exclusive, lifespan, task_status)
            await run_beside(serving, watchers)
    finally:
        for listener in listeners:
            listener.socket.close()
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


def _listener(sock: socket.socket, *, hand_over: bool) -> trio.SocketListener:
    """A listener on ``sock`` itself when it is handed over (closing the listener closes it),
    else on a duplicate, so that the caller's socket outlives the server."""
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock if hand_over else sock.dup()))


async def _serve_app(
    server: Server,
    listeners: Sequence[trio.SocketListener],
    exclusive: bool,
    lifespan: AbstractAsyncContextManager[object] | None,
    task_status: trio.TaskStatus[Server],
) -> None:
    async with lifespan if lifespan is not None else nullcontext():
        await server.serve_listeners(listeners, exclusive=exclusive, task_status=task_status)


async def _shutdown_after(
    trigger: Callable[[], Awaitable[object]], server: Server, *, task_status: trio.TaskStatus[None]
) -> None:
    task_status.started()
    await trigger()
    server.shutdown()
