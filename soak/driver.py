"""The soak: a real server process, 1,000 keep-alive clients, 1,000 open WebSockets exchanging
messages, 200 slowloris connections, 50 oversize uploaders and 50 vanishing clients at once, on
loopback, bounded in time.

Phases: start the server; warm up with the full mix for ``--warmup`` seconds (so that the
allocator reaches its working size), let everything close, then take the baseline ("start")
RSS and fd count of the idle server; run the full mix for ``--duration`` seconds; close every
client, wait for the server's fd count to come back; compare. Fails (exit 1) when a good
request or WebSocket message was not answered correctly, a WebSocket did not close cleanly, RSS
is more than 10 % above the baseline, an fd leaked, or the server log holds a traceback or an
ERROR line. Prints the figures either way.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio.lowlevel

from soak import clients, ws_clients  # noqa: E402

SERVER = [sys.executable, str(Path(__file__).with_name("server.py"))]
MAX_BODY_SIZE = 256 * 1024
SERVER_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}
"""glibc otherwise raises its mmap threshold as 64 KiB receive buffers are freed, after which
they come from the heap, whose top it keeps: RSS then follows the highest concurrency ever
seen rather than what is live. A fixed threshold makes RSS a fair leak signal; set the
variable in the environment to override it (an empty value restores glibc's default)."""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def run_mix(port: int, seconds: float, args: argparse.Namespace, tally: clients.Tally) -> None:
    """Every kind of client at once until ``seconds`` have passed (the keep-alive clients'
    last requests and the other kinds' last rounds may run a little longer)."""
    deadline = trio.current_time() + seconds
    kinds = [
        (functools.partial(clients.keepalive, think=args.think), args.keepalive),
        (functools.partial(ws_clients.websocket, think=args.think), args.websockets),
        (clients.slowloris, args.slowloris),
        (functools.partial(clients.oversize, limit=MAX_BODY_SIZE), args.oversize),
        (clients.vanish, args.vanish),
    ]
    async with trio.open_nursery() as nursery:
        for kind, count in kinds:
            for seed in range(count):
                nursery.start_soon(kind, port, deadline, tally, seed)
                await trio.lowlevel.checkpoint()


async def settle(pid: int, baseline_fds: int, limit: float) -> tuple[int, float]:
    """Wait (real time, at most ``limit`` s) for the server's fd count to fall to the baseline."""
    start = time.monotonic()
    count = fd_count(pid)
    while count > baseline_fds and time.monotonic() - start < limit:
        await trio.sleep(0.2)
        count = fd_count(pid)
    return count, time.monotonic() - start


def start_server(log: Path) -> tuple[subprocess.Popen[str], int, str]:
    env = {**SERVER_ENV, **os.environ}
    if not env["MALLOC_MMAP_THRESHOLD_"]:
        del env["MALLOC_MMAP_THRESHOLD_"]
    server = subprocess.Popen(SERVER, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env)
    assert server.stdout is not None
    line = server.stdout.readline().split()
    if line[:1] != ["port"]:
        server.kill()
        raise SystemExit(f"the server did not start; see {log}")
    return server, int(line[1]), line[2]


def log_problems(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "Traceback" in line or " ERROR " in line]


async def soak(args: argparse.Namespace) -> int:
    log = Path(args.log)
    server, port, serving = start_server(log)
    try:
        figures, tally = await _phases(server.pid, port, args)
        figures["served_by"] = serving
    finally:
        server.terminate()
        server.wait(10)
    return report(figures, tally, log_problems(log), log)


async def _phases(pid: int, port: int, args: argparse.Namespace) -> tuple[dict[str, object], clients.Tally]:
    """Warm-up, baseline, measured mix, settle: the figures and the measured mix's tally."""
    started = time.monotonic()
    fresh_fds = fd_count(pid)
    await run_mix(port, args.warmup, args, clients.Tally())
    base_fds, _ = await settle(pid, fresh_fds, args.settle)
    base_rss = rss_kib(pid)
    tally = clients.Tally()
    peak_rss, peak_fds = await _measured_mix(pid, port, args, tally)
    end_fds, settle_time = await settle(pid, base_fds, args.settle)
    end_rss = rss_kib(pid)
    figures = dict(
        good_requests=tally.good,
        websockets=args.websockets,
        websocket_messages=tally.ws_messages,
        wrong=tally.outcomes["wrong answers"],
        base_rss_kib=base_rss,
        peak_rss_kib=peak_rss,
        end_rss_kib=end_rss,
        rss_change=f"{(end_rss - base_rss) / base_rss:+.1%}",
        fresh_fds=fresh_fds,
        base_fds=base_fds,
        peak_fds=peak_fds,
        end_fds=end_fds,
        settle_s=round(settle_time, 1),
        total_s=round(time.monotonic() - started, 1),
        malloc_mmap_threshold=os.environ.get("MALLOC_MMAP_THRESHOLD_", SERVER_ENV["MALLOC_MMAP_THRESHOLD_"])
        or "default",
    )
    return figures, tally


async def _measured_mix(pid: int, port: int, args: argparse.Namespace, tally: clients.Tally) -> tuple[int, int]:
    """Runs the mix while sampling the server's RSS and fds; their peaks."""
    peak = [0, 0]

    async def sample() -> None:
        while True:
            peak[0], peak[1] = max(peak[0], rss_kib(pid)), max(peak[1], fd_count(pid))
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        await run_mix(port, args.duration, args, tally)
        nursery.cancel_scope.cancel()
    return peak[0], peak[1]


def report(figures: dict[str, object], tally: clients.Tally, problems: list[str], log: Path) -> int:
    for name, value in figures.items():
        print(f"{name:>21}: {value}")
    for outcome, count in sorted(tally.outcomes.items()):
        print(f"{outcome:>40}: {count}")
    failures = []
    if tally.wrong or not tally.good:
        failures.append(f"good requests not answered correctly: {tally.wrong[:5]}")
    if figures["websockets"] and not tally.ws_messages:
        failures.append("no WebSocket message was echoed")
    if int(figures["end_rss_kib"]) > 1.1 * int(figures["base_rss_kib"]):  # type: ignore[call-overload]
        failures.append("RSS more than 10 % above the baseline")
    if not figures["end_fds"] == figures["base_fds"] == figures["fresh_fds"]:
        failures.append("the server's fd count did not come back to that of the fresh server")
    if problems:
        failures.append(f"{len(problems)} traceback or ERROR lines in {log}: {problems[:3]}")
    print("SOAK " + ("FAILED: " + "; ".join(failures) if failures else "PASSED"))
    return 1 if failures else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keepalive", type=int, default=1000)
    parser.add_argument("--websockets", type=int, default=1000, help="open WebSockets exchanging messages")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between a keep-alive client's requests")
    parser.add_argument("--slowloris", type=int, default=200)
    parser.add_argument("--oversize", type=int, default=50)
    parser.add_argument("--vanish", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of the full mix before the baseline")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the measured mix")
    parser.add_argument("--settle", type=float, default=30.0, help="longest wait for fds to come back")
    parser.add_argument("--log", default="soak-server.log")
    return parser.parse_args()


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sys.exit(trio.run(soak, parse_args()))


if __name__ == "__main__":
    main()
