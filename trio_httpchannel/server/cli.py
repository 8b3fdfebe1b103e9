"""The command line: ``trio-httpchannel [OPTIONS] [APP]``, also ``python -m trio_httpchannel``.

A mistake in the options, an app that cannot be loaded or a port that cannot be bound prints one
line on stderr and exits with status 2 (usage) or 1 (everything else), never a traceback: the
person at the terminal needs the cause, not our call stack. The options are in :mod:`.options`,
loading the app in :mod:`.app_loading`, the logs in :mod:`.logs`; this module runs them, in this
process or under a :class:`.Supervisor`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import socket
import ssl
import sys
from collections.abc import Callable, Sequence
from functools import partial

import trio

from .._channel import HTTPChannel
from .._demo import demo
from ..asgi.lifespan import LifespanError
from .app_loading import build_handler, interface_of, load_app
from .errors import CommandError, UsageError
from .logs import access_log, configure_logging
from .options import PROG, Options, parse_options
from .proxy_headers import ProxyHeaders, ProxyHeadersWebSocket, TrustedProxies
from .proxy_protocol import ProxyProtocol
from .request_limit import RequestLimit, jittered
from .serving import Server, serve
from .sockets import bind, close_sockets, reuse_port_balances, url
from .supervisor import Supervisor, WorkerFailed, WorkerHandoff
from .tls import CERT_REQS, TLSConfigError, tls_context

__all__ = ["main", "serve_here", "supervise", "worker_main"]

logger = logging.getLogger("trio_httpchannel")

DEMO = "trio_httpchannel._demo:demo"
_WORKER_COMMAND = [sys.executable, "-c", "from trio_httpchannel.server.cli import worker_main; worker_main()"]


class _Started:
    """A ``task_status`` that logs where the server listens once it does, tells the supervisor
    (for a worker), and hands the server's ``shutdown`` to the request limit, if any."""

    def __init__(self, message: str, handoff: WorkerHandoff | None = None, limit: RequestLimit | None = None) -> None:
        self.message = message
        self.handoff = handoff
        self.limit = limit

    def started(self, value: object = None) -> None:
        logger.info("%s", self.message)
        if self.limit is not None and isinstance(value, Server):
            self.limit.retire = value.shutdown
        if self.handoff is not None:
            self.handoff.ready()


def _listen(options: Options, *, reuse_port: bool = False) -> list[socket.socket]:
    try:
        return bind(options.host, options.port, uds=options.uds, fd=options.fd, reuse_port=reuse_port)
    except OSError as error:
        raise CommandError(f"cannot listen on {_place(options)}: {error.strerror or error}") from None


def _place(options: Options) -> str:
    if options.fd is not None:
        return f"file descriptor {options.fd}"
    if options.uds is not None:
        return options.uds
    return f"{options.host}:{options.port}"


def _ssl_context(options: Options) -> ssl.SSLContext | None:
    if options.certfile is None:
        return None
    try:
        return tls_context(
            options.certfile,
            options.keyfile,
            password=options.ssl_keyfile_password,
            ca_certs=options.ssl_ca_certs,
            cert_reqs=CERT_REQS[options.ssl_cert_reqs],
            ciphers=options.ssl_ciphers,
            h2=options.settings.get("h2", True),
        )
    except TLSConfigError as error:
        raise CommandError(str(error)) from None


def _proxy_protocol(options: Options) -> ProxyProtocol | None:
    if options.proxy_protocol == "off":
        return None
    return ProxyProtocol(options.proxy_protocol, TrustedProxies(options.forwarded_allow_ips))


def _where(sockets: Sequence[socket.socket], tls: bool) -> str:
    return ", ".join(url(sock, tls=tls) for sock in sockets)


def serve_here(options: Options, handoff: WorkerHandoff | None = None) -> None:
    """Load the app and serve it in this process (as a worker when ``handoff`` is given)."""
    spec = options.app or DEMO
    app = demo if options.app is None else load_app(spec, app_dir=options.app_dir, factory=options.factory)
    kind = interface_of(app, options.interface)
    handler, lifespan = build_handler(app, kind, root_path=options.root_path)
    websocket_handler = getattr(handler, "websocket_handler", None) if options.ws == "auto" else None
    if options.proxy_headers:
        trusted = TrustedProxies(options.forwarded_allow_ips)
        handler = ProxyHeaders(handler, trusted)
        if websocket_handler is not None:
            websocket_handler = ProxyHeadersWebSocket(websocket_handler, trusted)
    limit = None
    if options.limit_max_requests is not None:
        handler = limit = RequestLimit(handler, jittered(options.limit_max_requests, options.limit_max_requests_jitter))
    channel = HTTPChannel(handler, on_response=access_log if options.access_log else None, **options.settings)
    channel.websocket_handler = websocket_handler  # --ws none: none, though an ASGIHandler has one
    context = _ssl_context(options)
    sockets = handoff.sockets if handoff is not None else _listen(options)
    where = _where(sockets, context is not None)
    if handoff is not None:
        message = f"worker {handoff.number} (pid {os.getpid()}) serving {spec} ({kind})"
    else:
        message = f"serving {spec} ({kind}) on {where} - press Ctrl-C to stop"
    try:
        trio.run(
            partial(
                serve,
                channel,
                sockets=sockets,
                ssl_context=context,
                max_connections=options.max_connections,
                graceful_timeout=options.graceful_timeout,
                proxy_protocol=_proxy_protocol(options),
                own_sockets=True,
                # A worker's sockets are shared (the supervisor and the other workers hold them).
                exclusive_sockets=handoff is None and options.fd is None,
                lifespan=lifespan,
                shutdown_trigger=handoff.orphaned if handoff is not None else None,
                task_status=_Started(message, handoff, limit),
            )
        )
    except LifespanError as error:
        raise CommandError(f"the application failed to start: {error}") from None
    finally:
        close_sockets(sockets, options.uds if handoff is None and options.fd is None else None)


def supervise(options: Options) -> None:
    """Serve with worker processes (``--workers``) or a reloader (``--reload``) in charge."""
    _ssl_context(options)  # a TLS mistake is told once, here, not by every worker
    if options.reload and importlib.util.find_spec("watchfiles") is None:
        raise CommandError("--reload needs the watchfiles package: pip install 'trio-httpchannel[reload]'")
    balanced = options.workers > 1 and options.uds is None and options.fd is None and reuse_port_balances()
    first = _listen(options, reuse_port=balanced)
    groups = [first] * options.workers
    if balanced:
        port = first[0].getsockname()[1]
        groups = [first] + [_listen(dataclasses.replace(options, port=port), reuse_port=True) for _ in groups[1:]]
    reload_dirs = (options.reload_dir or [options.app_dir]) if options.reload else []
    supervisor = Supervisor(
        _WORKER_COMMAND,
        dataclasses.asdict(options),
        groups,
        graceful_timeout=options.graceful_timeout,
        reload_dirs=reload_dirs,
    )
    spec = options.app or DEMO
    how = f"{options.workers} worker(s)" + (
        f", reloading on changes in {', '.join(reload_dirs)}" if reload_dirs else ""
    )
    message = f"serving {spec} on {_where(first, options.certfile is not None)} with {how} - press Ctrl-C to stop"
    try:
        trio.run(partial(supervisor.run, task_status=_Started(message)))
    except WorkerFailed as failure:
        raise CommandError(str(failure)) from None
    finally:
        for group in {id(group): group for group in groups}.values():
            close_sockets(group, None)
        close_sockets([], options.uds)


def _exit_status(run: Callable[[], None]) -> int:
    """Run, and turn the errors a person can fix into one line on stderr and a status."""
    try:
        run()
    except UsageError as error:
        print(f"{PROG}: error: {error} (see --help)", file=sys.stderr)
        return 2
    except CommandError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _run(argv: Sequence[str]) -> None:
    options = parse_options(argv, os.environ)
    configure_logging(options.log_level, options.access_log)
    if options.workers > 1 or options.reload:
        supervise(options)
    else:
        serve_here(options)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: parse, serve, exit with 0 after a graceful shutdown."""
    sys.exit(_exit_status(partial(_run, sys.argv[1:] if argv is None else argv)))


def worker_main() -> None:
    """A worker process started by :class:`Supervisor`."""
    handoff = WorkerHandoff.receive()
    options = Options(**handoff.config)
    configure_logging(options.log_level, options.access_log)
    sys.exit(_exit_status(partial(serve_here, options, handoff)))
