"""The benchmark of issue 6: trio-httpchannel against Hypercorn (trio), Uvicorn (h11 and
httptools) and Twisted, on one machine, each server a single process on CPU 0 and the load
on CPU 1.

Scenarios: c1 and c50 (wrk -t1 with 1 and 50 connections), pipe16 (h2load --h1, 10
connections with 16 pipelined GETs each), slow8 (8 pipelined GET /sleep of 0.5 s on one
connection: seconds until all are answered), idle (RSS per idle keep-alive connection with
1,000, 5,000 and 10,000 of them open) and ceiling (h11 alone on the servers' CPU, in
requests per second). The WebSocket scenarios (issue 13), against Hypercorn's trio worker and
Uvicorn with its websockets and wsproto backends: ws-echo (1 KiB binary messages echoed per
second over 1 and 50 connections, each waiting for its echo before sending again, by
bench/ws_clients.py), ws-idle (RSS per open idle WebSocket, each having exchanged one
message, with 1,000 and 10,000 open) and ws-idle-deflate (the same with permessage-deflate
negotiated, whose zlib contexts the server then holds). Each measurement starts a fresh
server and warms it up; the rounds visit every scenario and server in turn so that drift hits
all alike. Prints a Markdown table (the median and min-max of the rounds) and writes every
round to bench-results/bench-*.json.
Run it through scripts/bench, which sets up .bench-venv/, wrk and h2load.

--workers-scaling measures instead how ``--workers`` scales: c50 and pipe16 against ours with
one and two worker processes, unpinned (on a 2-core machine the load tool shares the cores).

--files measures the file scenarios of issue 17 (bench/files.py): a 50 MB file served by
Starlette's FileResponse by http.response.pathsend (ours) and without it (ours, Hypercorn's trio
worker, Uvicorn), in MB/s, with the server's CPU time per file and its RSS under the load.

--http2 measures the HTTP/2 scenarios of issue 14 (bench/http2.py) against ours and Hypercorn's
trio worker: h2load over cleartext prior knowledge and TLS, 10 connections x 100 streams and
1 x 100, beside our HTTP/1.1 with 100 requests pipelined on one connection.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import clients, files, http2, load, report, ws_clients  # noqa: E402
from bench.servers import SERVERS, WORKER_SERVERS, Server, serves  # noqa: E402

SCENARIOS = ["c1", "c50", "pipe16", "slow8", "idle", "ceiling", "ws-echo", "ws-idle", "ws-idle-deflate"]
TOOLS = {
    "c1": "wrk",
    "c50": "wrk",
    "pipe16": "h2load",
    **{scenario: "h2load" for scenario in http2.SCENARIOS},
    **{scenario: "wrk" for scenario in files.SCENARIOS},
}
KNOWN_SCENARIOS = SCENARIOS + http2.SCENARIOS + files.SCENARIOS
"""What --scenarios may name; without it a run measures SCENARIOS (--http2: the HTTP/2 ones,
--files: the file ones)."""
IDLE_SIZES = [1000, 5000, 10000]
WS_IDLE_SIZES = [1000, 10000]
WS_ECHO_CONNECTIONS = [1, 50]
SLOW_DEPTH = 8
RETRY_PAUSE = 5.0
"""Seconds to wait before measuring again after a disturbed measurement."""
Record = dict[str, Any]


@dataclass(frozen=True)
class Column:
    """One column of the table: a scenario, at one size for the idle scenario."""

    name: str
    scenario: str
    unit: str
    lower_is_better: bool
    size: int = 0


@dataclass(frozen=True)
class Plan:
    """Everything a run was asked to do, settled from the command line."""

    servers: list[str]
    columns: list[Column]
    ceiling: bool
    rounds: int
    duration: float
    warmup: float
    retries: int
    server_pin: list[str]
    load_pin: list[str]
    log: Path
    notes: list[str]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=os.environ.get("BENCH_PROG"), description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s, 1 s warm-up, idle at 1,000 only")
    parser.add_argument("--servers", help=f"comma-separated subset of {','.join(SERVERS)}")
    parser.add_argument("--scenarios", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--rounds", type=int, help="rounds of every scenario and server (default 3, --quick 1)")
    parser.add_argument("--duration", type=float, help="seconds of one load measurement (default 10, --quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds of load before each measurement (default 2, --quick 1)")
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help=f"times to measure again when other processes took over {report.BUSY * 100:.0f}%% of the CPUs (default 2)",
    )
    parser.add_argument(
        "--workers-scaling",
        action="store_true",
        help=f"c50 and pipe16 against {', '.join(WORKER_SERVERS)}, unpinned (other --servers/--scenarios ignored)",
    )
    parser.add_argument(
        "--http2",
        action="store_true",
        help=f"the HTTP/2 scenarios ({','.join(http2.SCENARIOS)}) against {', '.join(sorted(http2.SERVERS))} "
        "(--servers and --scenarios may narrow them)",
    )
    parser.add_argument(
        "--files",
        action="store_true",
        help=f"the file scenarios ({','.join(files.SCENARIOS)}) against ours-asgi and "
        f"{', '.join(sorted(files.PEERS))} (--servers and --scenarios may narrow them)",
    )
    parser.add_argument("--idle-max", type=int, default=10000, help="most idle connections to open (default 10000)")
    parser.add_argument("--output", type=Path, default=REPO / "bench-results", help="directory of the JSON file")
    return parser.parse_args(argv)


def subset(given: str | None, known: list[str], what: str) -> list[str]:
    """The names in the comma-separated ``given`` (all of ``known`` if None), in known order."""
    if given is None:
        return list(known)
    wanted = [name.strip() for name in given.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return [name for name in known if name in wanted]


def make_plan(args: argparse.Namespace, log: Path) -> Plan:
    """Settle servers, columns, timings and CPU pinning; note what had to be left out."""
    notes: list[str] = []
    if args.workers_scaling:
        args.scenarios, args.servers = "c50,pipe16", None
    if args.http2:
        args.scenarios = args.scenarios or ",".join(http2.SCENARIOS)
        args.servers = args.servers or ",".join(name for name in SERVERS if name in http2.SERVERS)
    if args.files:
        args.scenarios = args.scenarios or ",".join(files.SCENARIOS)
        args.servers = args.servers or ",".join(name for name in SERVERS if files.runs(name, "file-chunks"))
    scenarios = list(SCENARIOS) if args.scenarios is None else subset(args.scenarios, KNOWN_SCENARIOS, "scenarios")
    if any(scenario in http2.SCENARIOS for scenario in scenarios):
        notes.append(http2.NOTE)
    if any(scenario in files.SCENARIOS for scenario in scenarios):
        notes.append(files.NOTE)
        files.prepare()
    for scenario in [s for s in scenarios if s in TOOLS and shutil.which(TOOLS[s]) is None]:
        notes.append(f"{scenario} skipped: {TOOLS[scenario]} is not installed")
        scenarios.remove(scenario)
    if args.workers_scaling:
        notes.append("workers scaling: servers and load are not pinned, they share the CPUs")
        server_pin, load_pin, servers = [], [], list(WORKER_SERVERS)
    else:
        server_pin, load_pin = pinning(notes)
        servers = subset(args.servers, list(SERVERS), "servers")
    planned = columns(scenarios, idle_sizes(args, IDLE_SIZES, notes), idle_sizes(args, WS_IDLE_SIZES, notes))
    servers = [name for name in servers if any(_runs(name, column.scenario) for column in planned)]
    return Plan(
        servers=servers,
        columns=planned,
        ceiling="ceiling" in scenarios,
        rounds=args.rounds or (1 if args.quick else 3),
        duration=args.duration or (3.0 if args.quick else 10.0),
        warmup=args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0),
        retries=args.retries,
        server_pin=server_pin,
        load_pin=load_pin,
        log=log,
        notes=notes,
    )


def pinning(notes: list[str]) -> tuple[list[str], list[str]]:
    """Prefixes that put servers on CPU 0 and load tools on CPU 1; this process (whose clients
    are load too) moves to CPU 1. Empty, with a note, without CPUs 0 and 1 or taskset."""
    if not {0, 1} <= os.sched_getaffinity(0) or shutil.which("taskset") is None:
        notes.append("servers and load are not pinned to CPUs (no CPUs 0 and 1, or no taskset)")
        return [], []
    os.sched_setaffinity(0, {1})
    return ["taskset", "-c", "0"], ["taskset", "-c", "1"]


def idle_sizes(args: argparse.Namespace, known: list[int], notes: list[str]) -> list[int]:
    """The idle connection counts of ``known`` this run can hold: up to ``--idle-max`` and within
    the open-file limit, which is raised to its hard limit (the servers inherit it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    wanted = [n for n in known if n <= args.idle_max][: 1 if args.quick else None]
    sizes = [n for n in wanted if n + 200 <= hard]
    if sizes != wanted:
        notes.append(f"idle at {', '.join(str(n) for n in wanted if n not in sizes)} skipped: open-file limit {hard}")
    return sizes


def columns(scenarios: list[str], sizes: list[int], ws_sizes: list[int]) -> list[Column]:
    """The table's columns for ``scenarios``, one per idle size and echo connection count."""
    result = []
    for scenario in scenarios:
        if scenario in ("c1", "c50", "pipe16") or scenario in http2.SCENARIOS:
            result.append(Column(scenario, scenario, "req/s", lower_is_better=False))
        elif scenario == "slow8":
            result.append(Column(scenario, scenario, "s", lower_is_better=True))
        elif scenario in files.SCENARIOS:
            result.append(Column(scenario, scenario, "MB/s", lower_is_better=False))
        elif scenario == "idle":
            result.extend(Column(f"idle {n:,}", "idle", "KiB/conn", True, n) for n in sizes)
        elif scenario == "ws-echo":
            result.extend(Column(f"ws-echo c{n}", scenario, "msg/s", False, n) for n in WS_ECHO_CONNECTIONS)
        elif scenario in ("ws-idle", "ws-idle-deflate"):
            result.extend(Column(f"{scenario} {n:,}", scenario, "KiB/conn", True, n) for n in ws_sizes)
    return result


class CpuWatch:
    """The share of all CPUs that processes other than the server, the load tool and this
    driver used while the watch ran (user, system and steal time; interrupt time, where the
    loopback traffic itself is counted, is left out): how much other work disturbed it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        """(wall time, busy CPU seconds of the machine, CPU seconds of ours: server, waited
        children and this process)."""
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(f) for f in fields[:8])
        busy = (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")
        own = self.server.cpu_seconds()
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            own += usage.ru_utime + usage.ru_stime
        return time.monotonic(), busy, own

    def other_share(self) -> float:
        """Other processes' CPU time since the start, as a fraction of all CPUs' time."""
        wall, busy, own = (end - start for end, start in zip(self._sample(), self.start))
        return max(0.0, (busy - own) / (wall * (os.cpu_count() or 1)))


LOADS: dict[str, Callable[[int, float, list[str]], load.Load]] = {
    "c1": lambda port, seconds, pin: load.wrk(port, 1, seconds, pin),
    "c50": lambda port, seconds, pin: load.wrk(port, 50, seconds, pin),
    "pipe16": lambda port, seconds, pin: load.h2load(port, 10, 16, seconds, pin),
    **http2.LOADS,
}


def throughput(server: Server, column: Column, plan: Plan) -> Record:
    """Requests per second under the column's load, after a warm-up with the same load (none
    with ``--warmup 0``). A server that died under the load fails the measurement, rather than
    passing the rate of a dead server for its own."""
    run = LOADS[column.scenario]
    if plan.warmup > 0:
        run(server.port, plan.warmup, plan.load_pin)
        server.check_alive("the warm-up")
    watch = CpuWatch(server)
    result = run(server.port, plan.duration, plan.load_pin)
    server.check_alive("the measurement")
    return {"value": result.rate, "other_cpu": watch.other_share(), **result.as_json()}


def file_download(server: Server, column: Column, plan: Plan) -> Record:
    """MB/s of the 50 MB file, the server's CPU per file and its RSS (bench/files.py)."""
    watch = CpuWatch(server)
    result = files.measure(server, plan.duration, plan.warmup, plan.load_pin)
    return {**result, "other_cpu": watch.other_share()}


def slow_pipeline(server: Server, column: Column, plan: Plan) -> Record:
    """Seconds until 8 pipelined 0.5 s requests on one connection are all answered."""
    return {"value": clients.slow_pipeline_seconds(server.port, SLOW_DEPTH)}


def idle(server: Server, column: Column, plan: Plan) -> Record:
    """KiB of server RSS per idle keep-alive connection, with ``column.size`` of them open
    (each has had one request answered); the server's fd count shows it holds them all."""
    for sock in clients.open_keepalive(server.port, 20):
        sock.close()
    time.sleep(0.5)
    rss_before, fds_before = server.rss_kib(), server.fd_count()
    socks = clients.open_keepalive(server.port, column.size)
    try:
        time.sleep(1.0)
        rss_after, fds_after = server.rss_kib(), server.fd_count()
    finally:
        for sock in socks:
            sock.close()
    held = fds_after - fds_before
    return {
        "value": (rss_after - rss_before) / column.size,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "connections_held": held,
        "errors": max(0, column.size - held),
    }


def ws_echo_load(port: int, connections: int, seconds: float, pin: list[str]) -> dict[str, float]:
    """``bench/ws_clients.py``'s echo load, run as a load tool is (a process of its own,
    pinned to the load's CPU)."""
    command = pin + [sys.executable, "-m", "bench.ws_clients", str(port), str(connections), f"{seconds:g}"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"the WebSocket echo load failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def ws_echo(server: Server, column: Column, plan: Plan) -> Record:
    """1 KiB messages echoed per second over ``column.size`` WebSockets, after a warm-up, and
    the server's CPU time per echoed message (which other processes on a shared machine
    disturb far less than the rate)."""
    ws_echo_load(server.port, column.size, plan.warmup, plan.load_pin)
    watch = CpuWatch(server)
    cpu_before = server.cpu_seconds()
    result = ws_echo_load(server.port, column.size, plan.duration, plan.load_pin)
    cpu = server.cpu_seconds() - cpu_before
    per_message = cpu / result["messages"] * 1e6 if result["messages"] else None
    return {
        "value": result["rate"],
        "other_cpu": watch.other_share(),
        "server_cpu_us_per_message": per_message,
        **result,
    }


def ws_idle(server: Server, column: Column, plan: Plan) -> Record:
    """KiB of server RSS per open idle WebSocket, with ``column.size`` of them open, each having
    exchanged one 1 KiB message (with permessage-deflate for ws-idle-deflate, when the server
    accepts it: ``deflated`` counts those that did)."""
    deflate = column.scenario == "ws-idle-deflate"
    warm, _ = ws_clients.open_websockets(server.port, 20, deflate)
    for sock in warm:
        sock.close()
    time.sleep(0.5)
    rss_before, fds_before = server.rss_kib(), server.fd_count()
    socks, deflated = ws_clients.open_websockets(server.port, column.size, deflate)
    try:
        time.sleep(1.0)
        rss_after, fds_after = server.rss_kib(), server.fd_count()
    finally:
        for sock in socks:
            sock.close()
    held = fds_after - fds_before
    return {
        "value": (rss_after - rss_before) / column.size,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "connections_held": held,
        "deflated": deflated,
        "errors": max(0, column.size - held),
    }


MEASURES: dict[str, Callable[[Server, Column, Plan], Record]] = {
    "c1": throughput,
    "c50": throughput,
    "pipe16": throughput,
    "slow8": slow_pipeline,
    "idle": idle,
    **{scenario: throughput for scenario in http2.SCENARIOS},
    "ws-echo": ws_echo,
    "ws-idle": ws_idle,
    "ws-idle-deflate": ws_idle,
    **{scenario: file_download for scenario in files.SCENARIOS},
}


def measure(name: str, column: Column, plan: Plan, round_: int) -> Record:
    """One measurement of server ``name`` in ``column`` on a fresh server process; a failure
    is recorded as ``error`` with no value."""
    record: Record = {"round": round_, "column": column.name, "server": name, "unit": column.unit}
    record["loadavg"] = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    server = Server(name, column.scenario, plan.server_pin, plan.log)
    record["command"] = server.argv
    try:
        server.wait_ready()
        record.update(MEASURES[column.scenario](server, column, plan))
    except Exception as error:  # recorded and reported: one server failing must not end the run
        record.update(value=None, error=f"{type(error).__name__}: {error}")
    finally:
        server.stop()
    return record


def ceiling(plan: Plan, quick: bool) -> dict[str, float]:
    """h11's parse-only and full-cycle rates, on the servers' CPU (bench/ceiling.py)."""
    timing = ["--seconds", "1", "--repeat", "1"] if quick else ["--seconds", "2", "--repeat", "3"]
    command = plan.server_pin + [sys.executable, "-m", "bench.ceiling", *timing]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    return {key: float(value) for key, value in json.loads(done.stdout).items()}


def estimate_minutes(plan: Plan) -> float:
    """A rough length of the run, to print before it starts."""
    under_load = 2 + plan.warmup + plan.duration
    seconds = {"c1": under_load, "c50": under_load, "pipe16": under_load, "slow8": 7.0, "ws-echo": under_load}
    seconds.update((scenario, under_load) for scenario in http2.SCENARIOS + files.SCENARIOS)
    per_round = sum(
        seconds.get(column.scenario, 3 + column.size / 2000)
        * sum(_runs(name, column.scenario) for name in plan.servers)
        for column in plan.columns
    )
    return (per_round * plan.rounds + (14 if plan.ceiling else 0)) / 60


def _runs(name: str, scenario: str) -> bool:
    """Whether server ``name`` is measured in ``scenario`` (WebSocket and HTTP/2 have fewer peers)."""
    return serves(name, scenario) and http2.runs(name, scenario) and files.runs(name, scenario)


def measure_undisturbed(name: str, column: Column, plan: Plan, round_: int) -> list[Record]:
    """Measure, and again (after a pause, at most ``plan.retries`` times) while other processes
    took more than ``report.BUSY`` of the CPUs. Returns every attempt; all but the least
    disturbed one are marked ``discarded``. Progress goes to stderr."""
    attempts: list[Record] = []
    while not attempts or (len(attempts) <= plan.retries and attempts[-1].get("other_cpu", 0) > report.BUSY):
        if attempts:
            time.sleep(RETRY_PAUSE)
        attempts.append(measure(name, column, plan, round_))
        retry = f" (retry {len(attempts) - 1})" if len(attempts) > 1 else ""
        print(
            f"round {round_}/{plan.rounds}  {column.name:<11} {name:<18} {report.progress(attempts[-1])}{retry}",
            file=sys.stderr,
        )
    kept = min(attempts, key=lambda record: record.get("other_cpu", 0))
    for attempt in attempts:
        attempt["discarded"] = attempt is not kept
    return attempts


def run_rounds(plan: Plan) -> list[Record]:
    """Every round: every column, every server in turn."""
    records = []
    for round_ in range(1, plan.rounds + 1):
        for column in plan.columns:
            for name in [name for name in plan.servers if _runs(name, column.scenario)]:
                records.extend(measure_undisturbed(name, column, plan, round_))
    return records


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    args.output = args.output.resolve()
    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    args.output.mkdir(parents=True, exist_ok=True)
    plan = make_plan(args, args.output / f"bench-{stamp}-servers.log")
    os.chdir(REPO)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"about {estimate_minutes(plan):.0f} min; server output goes to {plan.log}", file=sys.stderr)
    figures = ceiling(plan, args.quick) if plan.ceiling else {}
    records = run_rounds(plan)
    meta = report.environment(started, plan)
    result = report.summarize(meta, plan, figures, records)
    path = args.output / f"bench-{stamp}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(report.markdown(result))
    print(f"\nraw rounds: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


if __name__ == "__main__":
    main(sys.argv[1:])
