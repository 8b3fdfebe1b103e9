"""The command line's options, read from the command line, else the environment, else defaults.

Every option can also come from the environment as ``TRIO_HTTPCHANNEL_<NAME>`` (``--max-body-size``
is ``TRIO_HTTPCHANNEL_MAX_BODY_SIZE``, a switch takes true or false, ``APP`` is
``TRIO_HTTPCHANNEL_APP``); the command line wins. argparse does the parsing: types, ranges,
choices and defaults, for a variable's value as for the command line's, since the value is parsed
as if it were given to its flag. What is checked here is only what spans several options (which
may come from both places) or what a setting's own type validates.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from .._config import Settings
from .errors import UsageError
from .option_types import FALSE, TRUE, PathList, integer, on_off, optional_seconds, seconds
from .proxy_headers import TrustedProxies
from .proxy_protocol import PROXY_PROTOCOL_MODES
from .serving import DEFAULT_GRACEFUL_TIMEOUT

__all__ = ["ENV_PREFIX", "INTERFACES", "LOG_LEVELS", "PROG", "WS_MODES", "Options", "parse_options"]

PROG = "trio-httpchannel"
ENV_PREFIX = "TRIO_HTTPCHANNEL_"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
INTERFACES = ("auto", "asgi", "native")
WS_MODES = ("auto", "none")
_SETTING_DEFAULTS = {field.name: field.default for field in dataclasses.fields(Settings)}


@dataclasses.dataclass(frozen=True)
class Options:
    """The command line, merged with the environment and the defaults, checked. A worker
    process receives it as JSON (``dataclasses.asdict``), so every field is plain data."""

    app: str | None
    host: str
    port: int
    uds: str | None
    fd: int | None
    settings: dict[str, Any]
    max_connections: int | None
    limit_max_requests: int | None
    limit_max_requests_jitter: int
    workers: int
    reload: bool
    reload_dir: list[str] | None
    certfile: str | None
    keyfile: str | None
    ssl_keyfile_password: str | None
    ssl_ca_certs: str | None
    ssl_cert_reqs: int
    ssl_ciphers: str | None
    root_path: str
    proxy_headers: bool
    proxy_protocol: str
    forwarded_allow_ips: str
    access_log: bool
    log_level: str
    graceful_timeout: float
    app_dir: str
    factory: bool
    interface: str
    ws: str


def parse_options(argv: Sequence[str], environ: Mapping[str, str]) -> Options:
    """The options from ``argv``, else ``environ``, else the defaults. Raises :class:`UsageError`."""
    parser = _Parser()
    parser.set_defaults(**parser.read_environ(environ))
    values = vars(parser.parse_args(argv))
    values["settings"] = {name: values.pop(name) for name in _SETTING_DEFAULTS if name in values}
    if values["access_log"] is None:
        values["access_log"] = values["workers"] == 1
    options = Options(**values)
    _check(options)
    return options


def _check(options: Options) -> None:
    """What argparse cannot see: the settings and proxy list as their own classes validate them,
    and the rules between two options, either of which may come from the environment."""
    try:
        Settings(**options.settings)
        TrustedProxies(options.forwarded_allow_ips)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if options.uds is not None and options.fd is not None:
        raise UsageError("--uds and --fd are two places to listen: give one")
    _check_tls(options)
    if options.limit_max_requests_jitter and options.limit_max_requests is None:
        raise UsageError("--limit-max-requests-jitter needs --limit-max-requests")


def _check_tls(options: Options) -> None:
    if options.certfile is None:
        given = {
            "--keyfile (--ssl-keyfile)": options.keyfile is not None,
            "--ssl-keyfile-password": options.ssl_keyfile_password is not None,
            "--ssl-ca-certs": options.ssl_ca_certs is not None,
            "--ssl-cert-reqs": options.ssl_cert_reqs != 0,
            "--ssl-ciphers": options.ssl_ciphers is not None,
        }
        flags = [flag for flag, present in given.items() if present]
        if flags:
            raise UsageError(f"{flags[0]} is a TLS option: give the certificate to serve HTTPS with --certfile")
    if options.ssl_cert_reqs != 0 and options.ssl_ca_certs is None:
        raise UsageError(
            f"--ssl-cert-reqs {options.ssl_cert_reqs} verifies client certificates: "
            "give the CA that issues them with --ssl-ca-certs"
        )


class _Parser(argparse.ArgumentParser):
    """The command line's parser: raises :class:`UsageError` instead of exiting, and reads the
    environment variable of every option added through :meth:`group`."""

    def __init__(self) -> None:
        super().__init__(
            prog=PROG,
            description="Serve an ASGI app or a native trio-httpchannel handler over HTTP/1.1 and HTTP/2. "
            f"Every option can also be set as an environment variable {ENV_PREFIX}<NAME>, "
            f"as in {ENV_PREFIX}MAX_BODY_SIZE; the command line wins.",
        )
        self._from_environ: list[argparse.Action] = []
        self.add_argument("app", nargs="?", metavar="APP", help="module:attribute to serve (default: a demo app)")
        self.add_argument("--version", action="version", version=_version())
        for add_group in (_listening, _limits, _websocket, _http2, _processes, _application, _proxies, _logging):
            add_group(self)

    def group(self, title: str) -> Callable[..., None]:
        """A function adding options under ``title`` (as ``add_argument`` does), each of which
        can also be set by its environment variable."""
        group = self.add_argument_group(title)

        def add(*flags: str, **kwargs: Any) -> None:
            self._from_environ.append(group.add_argument(*flags, **kwargs))

        return add

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def read_environ(self, environ: Mapping[str, str]) -> dict[str, Any]:
        """The values ``environ`` sets, by destination, each converted and checked as its flag's."""
        values: dict[str, Any] = {}
        if ENV_PREFIX + "APP" in environ:
            values["app"] = environ[ENV_PREFIX + "APP"]
        for action in self._from_environ:
            name = ENV_PREFIX + action.dest.upper()
            if name in environ:
                values[action.dest] = self._read_variable(action, name, environ[name])
        return values

    def _read_variable(self, action: argparse.Action, name: str, raw: str) -> Any:
        if action.nargs == 0:
            return _switch(name, raw)
        try:
            return getattr(self.parse_args([f"{action.option_strings[0]}={raw}"]), action.dest)
        except UsageError as error:
            raise UsageError(f"{name}: {error}") from None


def _switch(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered not in TRUE | FALSE:
        raise UsageError(f"{name}: expected true or false, got {raw!r}")
    return lowered in TRUE


def _version() -> str:
    ours, trio, h11 = (_installed(name) for name in ("trio-httpchannel", "trio", "h11"))
    return f"{PROG} {ours} (trio {trio}, h11 {h11}, {platform.python_implementation()} {platform.python_version()})"


def _installed(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


# The options, by group ---------------------------------------------------------------------------


def _listening(parser: _Parser) -> None:
    add = parser.group("where to listen")
    add("--host", default="127.0.0.1", help="address; '' or 0.0.0.0 for every interface (default %(default)s)")
    add("--port", type=integer(0, 65535), default=8000, help="TCP port; 0 picks a free one (default %(default)s)")
    add("--uds", metavar="PATH", help="listen on this Unix socket path instead of TCP")
    add("--fd", type=integer(0), metavar="N", help="listen on this inherited socket file descriptor instead")


def _limits(parser: _Parser) -> None:
    add = parser.group("limits of each connection (trio_httpchannel.Settings)")
    _setting(add, "--timeout", float, " s", "idle seconds before and between requests")
    _setting(add, "--header-timeout", float, " s", "seconds for a request line and headers to arrive: 408")
    _setting(add, "--body-timeout", float, " s", "longest stall in seconds while reading a request body: 408")
    _setting(add, "--send-timeout", float, " s", "longest wait in seconds for a client to read a response: abort")
    _setting(add, "--linger-timeout", float, " s", "seconds to drain a client after the last response")
    _setting(add, "--max-pipeline", int, "", "requests of one connection in progress at once")
    _setting(add, "--max-header-length", int, " bytes", "request line plus headers: 431")
    _setting(add, "--max-request-line", int, " bytes", "request line: 414")
    _setting(add, "--max-header-count", int, "", "header fields in a request: 431")
    _setting(add, "--max-body-size", int, " bytes", "request body: 413")


def _websocket(parser: _Parser) -> None:
    add = parser.group("WebSocket (the names are Uvicorn's)")
    add(
        "--ws",
        type=str.lower,
        choices=WS_MODES,
        default="auto",
        metavar="MODE",
        help="auto: serve the app's WebSocket routes; none: an upgrade request is an ordinary request "
        "for the app, as without WebSocket support (default %(default)s)",
    )
    _setting(add, "--ws-max-size", int, " bytes", "one message, all its fragments, after decompression: close 1009")
    _setting(add, "--ws-max-queue", int, "", "received messages waiting for the app; then reading stops")
    _setting(add, "--ws-ping-interval", optional_seconds, " s", "between keepalive pings; none or off: no pings")
    _setting(add, "--ws-ping-timeout", optional_seconds, " s", "for a ping's pong: close 1011; none or off: no wait")
    _setting(add, "--ws-per-message-deflate", on_off, "", "accept permessage-deflate compression: on or off")
    _setting(add, "--ws-close-timeout", float, " s", "for the close handshake, then TCP is closed")


def _http2(parser: _Parser) -> None:
    add = parser.group("HTTP/2 (trio_httpchannel.Settings)")
    add(
        "--h2",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="serve HTTP/2 too: to a cleartext connection opening with its preface, and over TLS by ALPN; "
        "--no-h2 serves HTTP/1.1 only (default on)",
    )
    _setting(add, "--h2-max-concurrent-streams", int, "", "streams of one connection at once; one more is refused")
    _setting(add, "--h2-max-header-list-size", int, " bytes", "a request's decoded header list: GOAWAY")
    _setting(add, "--h2-initial-window-size", int, " bytes", "request body a stream may send before it is read")
    _setting(add, "--h2-max-resets-per-second", int, "", "streams reset or refused per second (Rapid Reset): GOAWAY")
    _setting(add, "--h2-max-control-frames-per-second", int, "", "idle frames (SETTINGS, PING...) a second: GOAWAY")


def _setting(add: Callable[..., None], flag: str, kind: Callable[[str], Any], unit: str, help: str) -> None:
    """An option for a :class:`Settings` field: unset unless given (not even ``None``), so the
    channel's default applies, and its value checked by :class:`Settings` itself."""
    default = _SETTING_DEFAULTS[flag[2:].replace("-", "_")]
    metavar = "S" if unit == " s" else "N"
    if default is None:
        shown = "unlimited"
    elif isinstance(default, bool):
        shown, metavar = ("on" if default else "off"), "ON|OFF"
    else:
        shown = f"{default:g}{unit}" if isinstance(default, float) else f"{default}{unit}"
    add(flag, type=kind, default=argparse.SUPPRESS, metavar=metavar, help=f"{help} (default {shown})")


def _processes(parser: _Parser) -> None:
    add = parser.group("connections and processes")
    add(
        "--max-connections",
        type=integer(1),
        metavar="N",
        help="connections served at once; past it new ones get 503 (default unlimited)",
    )
    add(
        "--graceful-timeout",
        type=seconds,
        default=DEFAULT_GRACEFUL_TIMEOUT,
        metavar="S",
        help="seconds in-flight requests get to finish at shutdown (default %(default)g)",
    )
    add(
        "--limit-max-requests",
        type=integer(1),
        metavar="N",
        help="retire a worker gracefully after N requests (replaced under --workers/--reload) (default never)",
    )
    add(
        "--limit-max-requests-jitter",
        type=integer(0),
        default=0,
        metavar="N",
        help="add a random 0..N to each worker's --limit-max-requests, so they retire apart (default %(default)s)",
    )
    add(
        "--workers",
        type=integer(1),
        default=1,
        metavar="N",
        help="worker processes sharing the listening socket (default %(default)s)",
    )
    add("--reload", action="store_true", help="restart when a Python file changes (needs the watchfiles package)")
    add(
        "--reload-dir",
        action=PathList,
        metavar="DIR",
        help=f"directory to watch with --reload; repeatable, or several joined by {os.pathsep!r} (default: --app-dir)",
    )


def _application(parser: _Parser) -> None:
    add = parser.group("the application")
    add(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="directory added to the module search path for APP (default %(default)s)",
    )
    add("--factory", action="store_true", help="APP is a function returning the app: call it")
    add(
        "--interface",
        type=str.lower,
        choices=INTERFACES,
        default="auto",
        metavar="KIND",
        help="%(choices)s (default %(default)s: told by APP's signature)",
    )
    add("--root-path", default="", metavar="PATH", help="ASGI root_path: the path prefix a proxy mounts the app under")


def _proxies(parser: _Parser) -> None:
    add = parser.group("TLS (the --ssl-* names are Uvicorn's) and proxies")
    add("--certfile", "--ssl-certfile", metavar="PATH", help="TLS certificate chain file (PEM): serve HTTPS")
    add("--keyfile", "--ssl-keyfile", metavar="PATH", help="TLS private key file (PEM), if not in --certfile")
    add("--ssl-keyfile-password", metavar="TEXT", help="password of an encrypted --keyfile")
    add(
        "--ssl-ca-certs",
        metavar="PATH",
        help="CA certificates (PEM) that client certificates must be issued by (see --ssl-cert-reqs)",
    )
    add(
        "--ssl-cert-reqs",
        type=integer(0, 2),
        default=0,
        metavar="N",
        help="client certificates: 0 none asked, 1 optional (verified if sent), 2 required (default %(default)s)",
    )
    add(
        "--ssl-ciphers",
        metavar="LIST",
        help="OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's) (default: Python's defaults)",
    )
    add(
        "--proxy-headers",
        action="store_true",
        help="trust Forwarded and X-Forwarded-For/-Proto from --forwarded-allow-ips",
    )
    add(
        "--proxy-protocol",
        type=str.lower,
        choices=PROXY_PROTOCOL_MODES,
        default="off",
        metavar="VERSION",
        help="read a PROXY protocol header (%(choices)s) before TLS and HTTP, from --forwarded-allow-ips "
        "peers only (default %(default)s)",
    )
    add(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        metavar="IPS",
        help="comma-separated addresses or networks of the proxies whose headers and PROXY protocol "
        "are trusted, or '*' (default %(default)s)",
    )


def _logging(parser: _Parser) -> None:
    add = parser.group("logging")
    add(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        help="one line per response on stdout (default on, off with --workers > 1)",
    )
    add(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default="info",
        metavar="LEVEL",
        help="%(choices)s (default %(default)s)",
    )
