"""The command line: ``trio-httpchannel [OPTIONS] [APP]``, also ``python -m trio_httpchannel``.

Every option can also come from the environment as ``TRIO_HTTPCHANNEL_<NAME>`` (``--max-body-size``
is ``TRIO_HTTPCHANNEL_MAX_BODY_SIZE``); the command line wins. A mistake in the options, an app
that cannot be loaded or a port that cannot be bound prints one line on stderr and exits with
status 2 (usage) or 1 (everything else), never a traceback: the person at the terminal needs the
cause, not our call stack.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.metadata
import inspect
import logging
import os
import platform
import ssl
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any, NoReturn

import h11
import trio

from ._access import ResponseRecord
from ._asgi import ASGIHandler, asgi2_as_3, is_async_callable, positional_parameters
from ._channel import Handler, HTTPChannel
from ._config import Settings
from ._demo import demo
from ._lifespan import Lifespan, LifespanError
from ._proxy import ProxyHeaders, TrustedProxies
from ._request import Address, Request
from ._server import (
    DEFAULT_GRACEFUL_TIMEOUT,
    Supervisor,
    WorkerFailed,
    WorkerHandoff,
    bind,
    close_sockets,
    reuse_port_balances,
    serve,
    url,
)

__all__ = ["main", "worker_main", "CommandError", "UsageError", "Options", "parse_options", "load_app"]

logger = logging.getLogger("trio_httpchannel")
access_logger = logging.getLogger("trio_httpchannel.access")

PROG = "trio-httpchannel"
ENV_PREFIX = "TRIO_HTTPCHANNEL_"
DEMO = "trio_httpchannel._demo:demo"
_WORKER_COMMAND = [sys.executable, "-c", "from trio_httpchannel._cli import worker_main; worker_main()"]
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_SETTING_DEFAULTS = {field.name: field.default for field in dataclasses.fields(Settings)}


class UsageError(Exception):
    """The command line or the environment asks for something impossible (exit status 2)."""


class CommandError(Exception):
    """The server cannot run as asked: the app, a certificate, the address (exit status 1)."""


@dataclasses.dataclass(frozen=True)
class _Option:
    """One command-line option: its flag, how its value is parsed (``None`` for a switch), its
    default and its help; its environment variable is derived from the flag."""

    flag: str
    parse: Callable[[str], Any] | None
    default: Any
    help: str
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()


def _setting(flag: str, parse: Callable[[str], Any], unit: str, help: str) -> _Option:
    name = flag[2:].replace("-", "_")
    default = _SETTING_DEFAULTS[name]
    shown = "unlimited" if default is None else f"{default:g}{unit}"
    return _Option(flag, parse, None, f"{help} (default {shown})", "S" if unit == " s" else "N")


def _paths(value: str) -> list[str]:
    return [path for path in value.split(os.pathsep) if path]


_OPTIONS = [
    _Option("--host", str, "127.0.0.1", "address to listen on; '' or 0.0.0.0 for every interface (default 127.0.0.1)"),
    _Option("--port", int, 8000, "TCP port; 0 picks a free one (default 8000)"),
    _Option("--uds", str, None, "listen on this Unix socket path instead of TCP", "PATH"),
    _Option("--fd", int, None, "listen on this inherited socket file descriptor instead", "N"),
    _setting("--timeout", float, " s", "idle seconds before and between requests"),
    _setting("--header-timeout", float, " s", "seconds for a request line and headers to arrive: 408"),
    _setting("--body-timeout", float, " s", "longest stall in seconds while reading a request body: 408"),
    _setting("--send-timeout", float, " s", "longest wait in seconds for a client to read a response: abort"),
    _setting("--linger-timeout", float, " s", "seconds to drain a client after the last response"),
    _setting("--max-pipeline", int, "", "requests of one connection in progress at once"),
    _setting("--max-header-length", int, " bytes", "request line plus headers: 431"),
    _setting("--max-request-line", int, " bytes", "request line: 414"),
    _setting("--max-header-count", int, "", "header fields in a request: 431"),
    _setting("--max-body-size", int, " bytes", "request body: 413"),
    _Option("--max-connections", int, None, "connections served at once; past it new ones get 503 (default unlimited)", "N"),
    _Option("--workers", int, 1, "worker processes sharing the listening socket (default 1)", "N"),
    _Option("--reload", None, False, "restart when a Python file changes (needs the watchfiles package)"),
    _Option("--reload-dir", _paths, None, "directory to watch with --reload; repeatable (default: --app-dir)", "DIR"),
    _Option("--certfile", str, None, "TLS certificate chain file (PEM): serve HTTPS", "PATH"),
    _Option("--keyfile", str, None, "TLS private key file (PEM), if not in --certfile", "PATH"),
    _Option("--root-path", str, "", "ASGI root_path: the path prefix a proxy mounts the app under", "PATH"),
    _Option("--proxy-headers", None, False, "trust Forwarded and X-Forwarded-For/-Proto from --forwarded-allow-ips"),
    _Option(
        "--forwarded-allow-ips",
        str,
        "127.0.0.1",
        "comma-separated proxy addresses or networks to trust, or '*' (default 127.0.0.1)",
        "IPS",
    ),
    _Option("--access-log", None, None, "one line per response on stdout (default on, off with --workers > 1)"),
    _Option("--log-level", str.lower, "info", "debug, info, warning, error or critical (default info)", "LEVEL"),
    _Option(
        "--graceful-timeout",
        float,
        DEFAULT_GRACEFUL_TIMEOUT,
        f"seconds in-flight requests get to finish at shutdown (default {DEFAULT_GRACEFUL_TIMEOUT:g})",
        "S",
    ),
    _Option("--app-dir", str, ".", "directory added to the module search path for APP (default .)", "DIR"),
    _Option("--factory", None, False, "APP is a function returning the app: call it"),
    _Option("--interface", str.lower, "auto", "asgi, native or auto (default auto: told by APP's signature)", "KIND"),
]
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_INTERFACES = ("auto", "asgi", "native")


@dataclasses.dataclass(frozen=True)
class Options:
    """The command line, merged with the environment and the defaults, checked."""

    app: str | None
    host: str
    port: int
    uds: str | None
    fd: int | None
    settings: dict[str, Any]
    max_connections: int | None
    workers: int
    reload: bool
    reload_dir: list[str] | None
    certfile: str | None
    keyfile: str | None
    root_path: str
    proxy_headers: bool
    forwarded_allow_ips: str
    access_log: bool
    log_level: str
    graceful_timeout: float
    app_dir: str
    factory: bool
    interface: str


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Serve an ASGI app or a native trio-httpchannel handler over HTTP/1.1. "
        f"Every option can also be set as an environment variable {ENV_PREFIX}<NAME>, "
        f"as in {ENV_PREFIX}MAX_BODY_SIZE.",
    )
    parser.add_argument("app", nargs="?", metavar="APP", help="module:attribute to serve (default: a demo app)")
    for option in _OPTIONS:
        if option.parse is None and option.default is None:
            parser.add_argument(option.flag, action=argparse.BooleanOptionalAction, default=None, help=option.help)
        elif option.parse is None:
            parser.add_argument(option.flag, action="store_true", default=None, help=option.help)
        elif option.flag == "--reload-dir":
            parser.add_argument(option.flag, action="append", default=None, help=option.help, metavar=option.metavar)
        else:
            parser.add_argument(option.flag, type=option.parse, default=None, help=option.help, metavar=option.metavar)
    parser.add_argument("--version", action="version", version=_version())
    return parser


def _version() -> str:
    try:
        ours = importlib.metadata.version("trio-httpchannel")
    except importlib.metadata.PackageNotFoundError:
        ours = "(not installed)"
    return (
        f"{PROG} {ours} (trio {trio.__version__}, h11 {h11.__version__}, "
        f"{platform.python_implementation()} {platform.python_version()})"
    )


def parse_options(argv: Sequence[str], environ: dict[str, str] | os._Environ[str]) -> Options:
    """The options from ``argv``, else ``environ``, else the defaults. Raises :class:`UsageError`."""
    given = vars(_parser().parse_args(argv))
    values: dict[str, Any] = {"app": given["app"] if given["app"] is not None else environ.get(ENV_PREFIX + "APP")}
    for option in _OPTIONS:
        value = given[option.dest]
        if value is None and option.env in environ:
            value = _from_env(option, environ[option.env])
        values[option.dest] = option.default if value is None else value
    settings = {name: values.pop(name, None) for name in _SETTING_DEFAULTS}
    values["settings"] = {name: value for name, value in settings.items() if value is not None}
    if values["access_log"] is None:
        values["access_log"] = values["workers"] == 1
    options = Options(**values)
    _check(options)
    return options


def _from_env(option: _Option, raw: str) -> Any:
    if option.parse is None:
        lowered = raw.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise UsageError(f"{option.env}: expected true or false, got {raw!r}")
    try:
        return option.parse(raw)
    except ValueError:
        raise UsageError(f"{option.env}: invalid value {raw!r}") from None


def _check(options: Options) -> None:
    try:
        Settings(**options.settings)
        TrustedProxies(options.forwarded_allow_ips)
    except ValueError as error:
        raise UsageError(str(error)) from None
    problems = [
        (not 0 <= options.port <= 65535, f"--port must be from 0 to 65535, got {options.port}"),
        (options.uds is not None and options.fd is not None, "--uds and --fd are two places to listen: give one"),
        (options.keyfile is not None and options.certfile is None, "--keyfile needs --certfile"),
        (options.workers < 1, f"--workers must be at least 1, got {options.workers}"),
        (options.max_connections is not None and options.max_connections < 1, "--max-connections must be at least 1"),
        (not options.graceful_timeout >= 0, "--graceful-timeout must be a number of seconds >= 0"),
        (options.log_level not in _LOG_LEVELS, f"--log-level must be one of {', '.join(_LOG_LEVELS)}"),
        (options.interface not in _INTERFACES, f"--interface must be one of {', '.join(_INTERFACES)}"),
    ]
    for failed, message in problems:
        if failed:
            raise UsageError(message)


# Loading the app -------------------------------------------------------------------------------


def load_app(spec: str, *, app_dir: str, factory: bool) -> object:
    """The object ``spec`` (``module:attribute``, dotted attributes allowed) names, imported
    with ``app_dir`` first on the module search path, called first if ``factory``.
    Raises :class:`CommandError` with a one-line reason; the traceback is logged at debug level."""
    module_name, _, path = spec.partition(":")
    if not module_name or not path:
        raise CommandError(f"APP must look like module:attribute, got {spec!r}")
    sys.path.insert(0, os.path.abspath(app_dir))
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        logger.debug("importing %s failed", module_name, exc_info=True)
        raise CommandError(f"cannot import {module_name!r}: {_one_line(error)}") from None
    app: object = module
    for attribute in path.split("."):
        try:
            app = getattr(app, attribute)
        except AttributeError:
            raise CommandError(f"module {module_name!r} has no attribute {path!r}") from None
    if factory:
        try:
            app = app()  # type: ignore[operator]
        except Exception as error:
            logger.debug("the factory %s failed", spec, exc_info=True)
            raise CommandError(f"the factory {spec} failed: {_one_line(error)}") from None
    return app


def _one_line(error: BaseException) -> str:
    """``error`` and, when it was raised in the app's own code, where."""
    text = f"{type(error).__name__}: {error}"
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if not _is_import_machinery(frame.filename)]
    if frames and not isinstance(error, SyntaxError):
        text += f" ({frames[-1].filename}:{frames[-1].lineno})"
    return text


def _is_import_machinery(filename: str) -> bool:
    return filename.startswith(("<", _IMPORTLIB, _OURS))


_IMPORTLIB = os.path.dirname(importlib.__file__)
_OURS = os.path.dirname(os.path.abspath(__file__))


def interface_of(app: object, forced: str = "auto") -> str:
    """``"asgi3"``, ``"asgi2"`` or ``"native"``, told by ``app``'s signature unless ``forced``:
    ASGI 3 takes (scope, receive, send); ASGI 2 is a class, or a plain function, taking only the
    scope; a native handler is an async function taking the request."""
    if not callable(app):
        raise CommandError(f"the app must be callable, got {type(app).__name__} {app!r}")
    if forced == "native":
        return "native"
    if inspect.isclass(app):
        return "asgi2"
    positional = positional_parameters(app)
    if positional == 1:
        return "asgi2" if forced == "asgi" or not is_async_callable(app) else "native"
    if positional == 3 or forced == "asgi":
        return "asgi3"
    raise CommandError(
        f"cannot tell whether {app!r} is an ASGI app (scope, receive, send) or a native handler (request) "
        "from its signature: pass --interface asgi or --interface native"
    )


def build_handler(
    app: object, kind: str, *, root_path: str
) -> tuple[Handler, AbstractAsyncContextManager[object] | None]:
    """The channel handler for ``app`` and, for ASGI, its lifespan."""
    if kind == "native":
        if root_path:
            logger.warning("--root-path applies to ASGI apps only; the native handler ignores it")
        return app, None  # type: ignore[return-value]
    asgi_app = app if kind == "asgi3" else asgi2_as_3(app)  # type: ignore[arg-type]
    lifespan = Lifespan(asgi_app)
    return ASGIHandler(asgi_app, root_path=root_path, state=lifespan.state), lifespan


# Logging -----------------------------------------------------------------------------------------


def configure_logging(level: str, access_log: bool) -> None:
    """Server messages go to stderr, the access log to stdout (so either can be redirected)."""
    _route(logger, sys.stderr, "[%(process)d] %(levelname)s: %(message)s", level.upper())
    _route(access_logger, sys.stdout, "%(message)s", logging.INFO)
    access_logger.disabled = not access_log


def _route(target: logging.Logger, stream: Any, format: str, level: str | int) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(format))
    target.handlers[:] = [handler]
    target.setLevel(level)
    target.propagate = False


def access_log(record: ResponseRecord) -> None:
    """One line per response: the Common Log Format (client, time, request line, status, bytes
    sent, head included) followed by the response time, and ``cut-short`` for a response the
    connection's abort cut (the client went away, or did not read)."""
    access_logger.info(
        '%s - - [%s] "%s" %d %d %.1fms%s',
        _client_host(record.client),
        time.strftime("%d/%b/%Y:%H:%M:%S %z"),
        _request_line(record.request),
        record.status,
        record.sent,
        record.seconds * 1000,
        "" if record.complete else " cut-short",
    )


def _client_host(client: Address) -> str:
    if isinstance(client, tuple):
        return str(client[0])
    return client or "-"


def _request_line(request: Request | None) -> str:
    if request is None:
        return "-"
    target = request.target.replace("\\", "\\\\").replace('"', '\\"')
    return f"{request.method} {target} HTTP/{request.http_version}"


# Running -----------------------------------------------------------------------------------------


class _Started:
    """A ``task_status`` that logs where the server listens once it does, and tells the
    supervisor, for a worker."""

    def __init__(self, message: str, handoff: WorkerHandoff | None = None) -> None:
        self.message = message
        self.handoff = handoff

    def started(self, value: object = None) -> None:
        logger.info("%s", self.message)
        if self.handoff is not None:
            self.handoff.ready()


def _listen(options: Options, *, reuse_port: bool = False) -> list[Any]:
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
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(options.certfile, options.keyfile)
    except (OSError, ssl.SSLError) as error:
        raise CommandError(f"cannot load the TLS certificate {options.certfile}: {error}") from None
    context.set_alpn_protocols(["http/1.1"])
    return context


def _where(sockets: Sequence[Any], tls: bool) -> str:
    return ", ".join(url(sock, tls=tls) for sock in sockets)


def serve_here(options: Options, handoff: WorkerHandoff | None = None) -> None:
    """Load the app and serve it in this process (as a worker when ``handoff`` is given)."""
    spec = options.app or DEMO
    app = demo if options.app is None else load_app(spec, app_dir=options.app_dir, factory=options.factory)
    kind = interface_of(app, options.interface)
    handler, lifespan = build_handler(app, kind, root_path=options.root_path)
    if options.proxy_headers:
        handler = ProxyHeaders(handler, TrustedProxies(options.forwarded_allow_ips))
    channel = HTTPChannel(handler, on_response=access_log if options.access_log else None, **options.settings)
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
                lifespan=lifespan,
                shutdown_trigger=handoff.orphaned if handoff is not None else None,
                task_status=_Started(message, handoff),
            )
        )
    except Exception as error:
        _raise_if_startup_failure(error)
        raise
    finally:
        close_sockets(sockets, options.uds if handoff is None and options.fd is None else None)


def _raise_if_startup_failure(error: Exception) -> None:
    if isinstance(error, LifespanError):
        raise CommandError(f"the application failed to start: {error}") from None


def supervise(options: Options) -> None:
    """Serve with worker processes (``--workers``) or a reloader (``--reload``) in charge."""
    if options.reload:
        try:
            import watchfiles  # noqa: F401
        except ImportError:
            raise CommandError("--reload needs the watchfiles package: pip install 'trio-httpchannel[reload]'") from None
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
    how = f"{options.workers} worker(s)" + (f", reloading on changes in {', '.join(reload_dirs)}" if reload_dirs else "")
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
