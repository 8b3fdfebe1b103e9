"""The command line's logging: server messages on stderr, the access log on stdout."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from .._access import ResponseRecord
from .._request import Address, Request

__all__ = ["access_log", "configure_logging"]

logger = logging.getLogger("trio_httpchannel")
access_logger = logging.getLogger("trio_httpchannel.access")


class _ServerFormatter(logging.Formatter):
    """Server lines start with the time in UTC as ISO 8601 to the millisecond
    (``2026-11-30T18:01:02.123Z``), unambiguous across hosts and time zones."""

    converter = staticmethod(time.gmtime)
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


def configure_logging(level: str, access_log: bool) -> None:
    """Server messages go to stderr as ``time [pid] LEVEL: message``, the access log to stdout
    (so either can be redirected)."""
    _route(logger, sys.stderr, _ServerFormatter("%(asctime)s [%(process)d] %(levelname)s: %(message)s"), level.upper())
    _route(access_logger, sys.stdout, logging.Formatter("%(message)s"), logging.INFO)
    access_logger.disabled = not access_log


def _route(target: logging.Logger, stream: Any, formatter: logging.Formatter, level: str | int) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
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
