"""The load generators, wrk and h2load, run as subprocesses and read back.

Each run gives a ``Load``: the rate, and every sign that the rate is not one of good answers
(socket errors, failed requests, non-2xx statuses), which the report lists.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Load:
    """What one load run measured."""

    rate: float
    """requests per second"""
    requests: int
    errors: int
    """socket errors (wrk), or errored and timed-out requests (h2load)"""
    non_2xx: int
    output: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def wrk(port: int, connections: int, seconds: float, pin: list[str], path: str = "/") -> Load:
    """``wrk -t1 -c<connections>`` on GET ``path`` for ``seconds``."""
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", f"http://127.0.0.1:{port}{path}"
    ]  # fmt: skip
    return parse_wrk(_run(pin, command, seconds))


def h2load(port: int, clients: int, depth: int, seconds: float, pin: list[str]) -> Load:
    """``h2load --h1``: ``clients`` connections each keeping ``depth`` GET / pipelined, for
    ``seconds``."""
    command = ["h2load", "--h1", "-t1", f"-c{clients}", f"-m{depth}", f"-D{seconds:g}", f"http://127.0.0.1:{port}/"]
    return parse_h2load(_run(pin, command, seconds))


def h2load_h2(url: str, clients: int, streams: int, seconds: float, pin: list[str]) -> Load:
    """``h2load`` in HTTP/2: ``clients`` connections each keeping ``streams`` GETs of ``url``
    in flight as concurrent streams, for ``seconds``. An http:// URL is spoken with prior
    knowledge (h2load says ``h2c``), an https:// one by ALPN (``h2``); a run that spoke
    anything else raises."""
    command = ["h2load", "-t1", f"-c{clients}", f"-m{streams}", f"-D{seconds:g}", url]
    output = _run(pin, command, seconds)
    expected = "h2" if url.startswith("https:") else "h2c"
    protocol = re.search(r"Application protocol: (\S+)", output)
    if protocol is None or protocol[1] != expected:
        raise RuntimeError(f"h2load did not speak {expected} to {url}: {protocol[1] if protocol else 'no connection'}")
    return parse_h2load(output)


def _run(pin: list[str], command: list[str], seconds: float) -> str:
    """The standard output of ``command`` run under ``pin``; it must succeed within
    ``seconds`` + 30 s."""
    done = subprocess.run(pin + command, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def _number(pattern: str, text: str, default: str | None = None) -> float:
    """The first group of ``pattern`` in ``text`` as a number; ``default`` when absent, or raise."""
    match = re.search(pattern, text)
    if match is None:
        if default is None:
            raise ValueError(f"no {pattern!r} in the output:\n{text}")
        return float(default)
    return float(match[1])


def parse_wrk(output: str) -> Load:
    """Read wrk's summary: ``Requests/sec``, the total, ``Socket errors`` and ``Non-2xx``."""
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return Load(
        rate=_number(r"Requests/sec:\s*([\d.]+)", output),
        requests=int(_number(r"(\d+) requests in", output)),
        errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        non_2xx=int(_number(r"Non-2xx or 3xx responses:\s*(\d+)", output, "0")),
        output=output,
    )


def parse_h2load(output: str) -> Load:
    """Read h2load's summary: the req/s of ``finished in``, and the request and status counts."""
    requests = re.search(r"requests: (\d+) total.*?(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", output)
    # "failed" counts the non-2xx/3xx answers too, which the status codes give apart
    statuses = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    if requests is None or statuses is None:
        raise ValueError(f"no request or status counts in h2load's output:\n{output}")
    return Load(
        rate=_number(r"finished in [\d.]+\w*, ([\d.]+) req/s", output),
        requests=int(requests[2]),
        errors=int(requests[4]) + int(requests[5]),
        non_2xx=sum(int(n) for n in statuses.groups()),
        output=output,
    )
