"""The command line's options: the table of flags, each also read from the environment as
``TRIO_HTTPCHANNEL_<NAME>`` (``--max-body-size`` is ``TRIO_HTTPCHANNEL_MAX_BODY_SIZE``), merged
into checked :class:`Options`; the command line wins over the environment."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import platform
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import h11
import trio

from .._config import Settings
from .errors import UsageError
from .proxy_headers import TrustedProxies
from .serving import DEFAULT_GRACEFUL_TIMEOUT

__all__ = ["ENV_PREFIX", "PROG", "Options", "parse_options"]

PROG = "trio-httpchannel"
ENV_PREFIX = "TRIO_HTTPCHANNEL_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_SETTING_DEFAULTS = {field.name: field.default for field in dataclasses.fields(Settings)}


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
