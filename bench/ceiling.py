"""The in-process ceiling: how many requests per second h11 alone gets through on this CPU.

Prints one JSON object: ``parse_only`` (feed wrk's GET request to a new
``h11.Connection(h11.SERVER)`` and take its two events, Request and EndOfMessage) and
``cycle`` (the same on one long-lived connection, plus sending a minimal Response, Data and
EndOfMessage and ``start_next_cycle``), each in requests per second, best of ``--repeat``
timings of ``--seconds`` each. No server can parse with h11 faster than ``parse_only``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import h11

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
"""What wrk sends for ``wrk http://127.0.0.1:8000/``."""
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
BODY = b"Hello, world!"


def parse_only() -> None:
    """Parse one request on a fresh server-side connection."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(REQUEST)
    connection.next_event()
    connection.next_event()


def cycle_on(connection: h11.Connection) -> Callable[[], None]:
    """One full request-response cycle on ``connection``, ready for the next one."""

    def cycle() -> None:
        connection.receive_data(REQUEST)
        connection.next_event()
        connection.next_event()
        connection.send(h11.Response(status_code=200, headers=HEADERS))
        connection.send(h11.Data(data=BODY))
        connection.send(h11.EndOfMessage())
        connection.start_next_cycle()

    return cycle


def rate(step: Callable[[], None], seconds: float) -> float:
    """Calls of ``step`` per second over at least ``seconds`` of wall time."""
    count = 0
    batch = 1000
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(batch):
            step()
        count += batch
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one timing (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per figure; the best counts (default 3)")
    args = parser.parse_args()
    figures = {
        "parse_only": max(rate(parse_only, args.seconds) for _ in range(args.repeat)),
        "cycle": max(rate(cycle_on(h11.Connection(h11.SERVER)), args.seconds) for _ in range(args.repeat)),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
