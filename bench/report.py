"""What a benchmark run prints and saves: the environment, the medians, the ratios to the
peers, the issue's targets, and every sign that a figure is not to be trusted (errors,
non-2xx answers, a busy machine)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import http2

if TYPE_CHECKING:
    from bench.run import Plan, Record

OURS = ["ours-asgi", "ours-native"]
PEERS = ["hypercorn-trio", "uvicorn-h11", "uvicorn-wsproto"]
PACKAGES = ["trio", "h11", "wsproto", "hypercorn", "uvicorn", "httptools", "websockets", "twisted"]
BUSY = 0.10
"""Share of all CPUs used by other processes during a load run above which it is measured
again, and flagged if it stays above."""


def fmt(value: float | None, unit: str) -> str:
    """``value`` as the table shows it in ``unit``."""
    if value is None:
        return "–"
    if unit in ("req/s", "msg/s"):
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:.1f}"


def progress(record: Record) -> str:
    """One measurement as a progress line ends: its figure, errors and disturbance."""
    if record.get("error"):
        return f"FAILED {record['error']}"
    text = f"{fmt(record['value'], record['unit'])} {record['unit']}"
    if record.get("errors") or record.get("non_2xx"):
        text += f"  (errors {record.get('errors', 0)}, non-2xx {record.get('non_2xx', 0)})"
    if record.get("server_cpu_ms_per_file"):
        text += f"  server CPU {record['server_cpu_ms_per_file']:.0f} ms/file"
        text += f"  RSS {record['rss_before_kib'] / 1024:.1f} -> peak {record['rss_peak_kib'] / 1024:.1f} MiB"
    if record.get("server_cpu_us_per_message"):
        text += f"  server CPU {record['server_cpu_us_per_message']:.0f} µs/msg"
    if "other_cpu" in record:
        text += f"  other CPU {record['other_cpu']:.0%}"
    return text + f"  load {record['loadavg'][0]:.2f}"


def _command_version(command: list[str], word: int) -> str:
    """Word ``word`` of the first output line of ``command``, or 'not installed'."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    lines = (done.stdout or done.stderr).split()
    return lines[word] if len(lines) > word else "unknown"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent)
    return done.stdout.strip() or "unknown"


def versions() -> dict[str, str]:
    """Versions of the project (with its git commit), the peers, the libraries and the tools."""
    found = {
        "trio-httpchannel": f"{importlib.metadata.version('trio-httpchannel')} ({_git('describe', '--always', '--dirty')})"
    }
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["wrk"] = _command_version(["wrk", "-v"], 1)
    found["h2load"] = _command_version(["h2load", "--version"], 1)
    return found


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def environment(started: float, plan: Plan) -> dict[str, Any]:
    """Date, command, machine, versions and settings of a run."""
    command = f"{os.environ.get('BENCH_PROG', 'python bench/run.py')} {shlex.join(sys.argv[1:])}".strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "minutes": round((time.time() - started) / 60, 1),
        "command": command,
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "kernel": platform.release()},
        "python": platform.python_version(),
        "versions": versions(),
        "settings": {
            "rounds": plan.rounds,
            "duration_s": plan.duration,
            "warmup_s": plan.warmup,
            "retries": plan.retries,
            "pinned": bool(plan.server_pin),
            "servers": plan.servers,
            "columns": [column.name for column in plan.columns],
        },
        "notes": plan.notes,
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def kept(records: list[Record]) -> list[Record]:
    """The records that count: not the attempts discarded for a more quiet one."""
    return [record for record in records if not record.get("discarded")]


def medians(records: list[Record]) -> dict[str, dict[str, dict[str, float]]]:
    """Per server and column: median, min, max and count of the rounds that gave a value."""
    values: dict[tuple[str, str], list[float]] = {}
    for record in kept(records):
        if record.get("value") is not None:
            values.setdefault((record["server"], record["column"]), []).append(record["value"])
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for (server, column), found in values.items():
        summary.setdefault(server, {})[column] = _spread(found)
    return summary


def targets(plan: Plan, summary: dict[str, Any], ceiling: dict[str, float]) -> list[dict[str, Any]]:
    """The issue's targets that this run measured: each with its figures and whether it is met."""

    def median(server: str, column: str) -> float | None:
        return summary.get(server, {}).get(column, {}).get("median")

    checks: list[tuple[str, float | None, str, float | None]] = [
        (
            "c50: ours-asgi ≥ 1.5 × uvicorn-h11",
            median("ours-asgi", "c50"),
            "≥",
            _times(1.5, median("uvicorn-h11", "c50")),
        ),
        (
            "c50: ours-asgi ≥ 6 × hypercorn-trio",
            median("ours-asgi", "c50"),
            "≥",
            _times(6, median("hypercorn-trio", "c50")),
        ),
        (
            "pipe16: ours-asgi ≥ 2 × uvicorn-h11",
            median("ours-asgi", "pipe16"),
            "≥",
            _times(2, median("uvicorn-h11", "pipe16")),
        ),
        (
            "pipe16: ours-asgi ≥ 0.6 × twisted",
            median("ours-asgi", "pipe16"),
            "≥",
            _times(0.6, median("twisted", "pipe16")),
        ),
        (
            "c50: ours-native ≥ 0.5 × h11 parse-only ceiling",
            median("ours-native", "c50"),
            "≥",
            _times(0.5, ceiling.get("parse_only")),
        ),
    ]
    checks.extend(http2.targets(median))
    for server in OURS:
        checks.append((f"slow8: {server} ≤ 0.6 s", median(server, "slow8"), "≤", 0.6))
        checks.extend(
            (f"{column.name}: {server} ≤ 6 KiB/connection", median(server, column.name), "≤", 6.0)
            for column in plan.columns
            if column.scenario == "idle"
        )
    checks.extend(websocket_checks(plan, median))
    return [
        {"target": label, "value": value, "bound": bound, "met": (value >= bound if op == "≥" else value <= bound)}
        for label, value, op, bound in checks
        if value is not None and bound is not None
    ]


def websocket_checks(
    plan: Plan, median: Callable[[str, str], float | None]
) -> list[tuple[str, float | None, str, float | None]]:
    """Issue 13's targets: echo at least 2 × Hypercorn-trio's and Uvicorn-wsproto's, and an idle
    WebSocket no larger than an idle HTTP keep-alive connection of the same server and count."""
    checks: list[tuple[str, float | None, str, float | None]] = []
    for column in plan.columns:
        name = column.name
        if column.scenario == "ws-echo":
            hypercorn = _times(2, median("hypercorn-trio", name))
            checks.append(
                (f"{name}: ours-asgi ≥ 2 × hypercorn-trio (issue 13)", median("ours-asgi", name), "≥", hypercorn)
            )
            checks.append(
                (
                    f"{name}: ours-asgi ≥ uvicorn-wsproto (issue 13)",
                    median("ours-asgi", name),
                    "≥",
                    median("uvicorn-wsproto", name),
                )
            )
        elif column.scenario in ("ws-idle", "ws-idle-deflate"):
            for server in OURS:
                http = median(server, f"idle {column.size:,}")
                checks.append(
                    (
                        f"{name}: {server} ≤ its idle {column.size:,} (HTTP keep-alive) (issue 13)",
                        median(server, name),
                        "≤",
                        http,
                    )
                )
    return checks


def _times(factor: float, value: float | None) -> float | None:
    return None if value is None else factor * value


def problems(records: list[Record]) -> list[str]:
    """Every failed measurement, and every one with errors or non-2xx answers."""
    found = []
    for record in kept(records):
        where = f"round {record['round']} {record['column']} {record['server']}"
        if record.get("error"):
            found.append(f"{where}: FAILED {record['error']}")
        elif record.get("errors") or record.get("non_2xx"):
            found.append(f"{where}: {record.get('errors', 0)} errors, {record.get('non_2xx', 0)} non-2xx answers")
    return found


def disturbance(records: list[Record]) -> dict[str, Any]:
    """How busy the machine was: 1-min load averages before the measurements, the share of
    the CPUs other processes took during the load runs that count, how many were measured
    again for that, and which stayed disturbed."""
    counted = kept(records)
    loads = [record["loadavg"][0] for record in counted]
    others = [record["other_cpu"] for record in counted if "other_cpu" in record]
    busy = [
        f"round {r['round']} {r['column']} {r['server']} ({r['other_cpu']:.0%})"
        for r in counted
        if r.get("other_cpu", 0) > BUSY
    ]
    return {
        "loadavg_1min": _spread(loads) if loads else None,
        "other_cpu": _spread(others) if others else None,
        "discarded": len(records) - len(counted),
        "busy_runs": busy,
    }


def summarize(meta: dict[str, Any], plan: Plan, ceiling: dict[str, float], records: list[Record]) -> dict[str, Any]:
    """Everything the JSON file holds: the raw rounds and what the report says of them."""
    summary = medians(records)
    native_c50 = summary.get("ours-native", {}).get("c50", {}).get("median")
    if native_c50 is not None and "parse_only" in ceiling:
        ceiling = {**ceiling, "ours_native_c50_share_of_parse_only": native_c50 / ceiling["parse_only"]}
    return {
        "meta": meta,
        "columns": [{"name": c.name, "unit": c.unit, "lower_is_better": c.lower_is_better} for c in plan.columns],
        "summary": summary,
        "ceiling": ceiling,
        "targets": targets(plan, summary, ceiling),
        "problems": problems(records),
        "disturbance": disturbance(records),
        "records": records,
    }


def _cell(spread: dict[str, float] | None, unit: str) -> str:
    if spread is None:
        return "–"
    if spread["n"] == 1:
        return fmt(spread["median"], unit)
    return f"{fmt(spread['median'], unit)} ({fmt(spread['min'], unit)}–{fmt(spread['max'], unit)})"


def table(result: dict[str, Any]) -> list[str]:
    """The Markdown table: a row per server, a column per scenario, then the ratio rows."""
    columns = result["columns"]
    summary = result["summary"]
    servers = result["meta"]["settings"]["servers"]
    head = [f"{c['name']} {c['unit']} {'↓' if c['lower_is_better'] else '↑'}" for c in columns]
    lines = ["| server | " + " | ".join(head) + " |", "|---|" + "---:|" * len(columns)]
    for server in servers:
        cells = [_cell(summary.get(server, {}).get(c["name"]), c["unit"]) for c in columns]
        lines.append(f"| {server} | " + " | ".join(cells) + " |")
    for ours in [s for s in OURS if s in servers]:
        for peer in [s for s in PEERS if s in servers]:
            cells = [_ratio(summary, ours, peer, c["name"]) for c in columns]
            lines.append(f"| {ours} ÷ {peer} | " + " | ".join(cells) + " |")
    return lines


def _ratio(summary: dict[str, Any], ours: str, peer: str, column: str) -> str:
    mine = summary.get(ours, {}).get(column)
    theirs = summary.get(peer, {}).get(column)
    if mine is None or theirs is None or not theirs["median"]:
        return "–"
    return f"×{mine['median'] / theirs['median']:.2f}"


def markdown(result: dict[str, Any]) -> str:
    """The whole report, Markdown-ready."""
    meta = result["meta"]
    settings = meta["settings"]
    machine = meta["machine"]
    version_list = ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    lines = [
        f"## trio-httpchannel benchmark, {meta['date']}",
        "",
        f"- command: `{meta['command']}` ({meta['minutes']} min)",
        f"- machine: {machine['cpus']} CPUs, {machine['cpu_model']}, Linux {machine['kernel']}",
        f"- Python {meta['python']}; {version_list}",
        f"- {settings['rounds']} round(s) of {settings['duration_s']:g} s after {settings['warmup_s']:g} s of warm-up, "
        "servers interleaved, a fresh server process for each measurement; "
        + ("server on CPU 0, load on CPU 1" if settings["pinned"] else "not pinned to CPUs")
        + f"; a load run during which other processes took over {BUSY:.0%} of the CPUs is measured again "
        f"(up to {settings['retries']} times) and the least disturbed attempt counts",
        "- every server single-process, access log off, 200 text/plain `Hello, world!` with Content-Length; "
        "Uvicorn `--timeout-keep-alive 300` and Hypercorn `--keep-alive 300` (defaults 5 s) so idle connections stay "
        "open while measured; ours with its defaults, and `--max-pipeline 8` for slow8",
        *(f"- note: {note}" for note in meta["notes"]),
        "",
        "Cells: median (min–max) over the rounds. ↑ higher is better (req/s, msg/s), ↓ lower is better "
        "(slow8: seconds until 8 pipelined 0.5 s requests on one connection are answered; idle: server RSS "
        "per idle keep-alive connection; ws-echo: 1 KiB binary messages echoed per second, each WebSocket "
        "sending its next once the echo is back; ws-idle: server RSS per open idle WebSocket that exchanged "
        "one message, ws-idle-deflate the same with permessage-deflate negotiated). Ratio rows: ours ÷ peer of "
        "the medians, so above 1 is better in ↑ columns and below 1 is better in ↓ columns. The two "
        "uvicorn-websockets/-wsproto rows are Uvicorn-httptools with that WebSocket backend, measured in the "
        "WebSocket columns only; twisted and the other Uvicorn rows take no part in them.",
        "",
        *table(result),
        "",
        *cpu_lines(result["records"]),
        *file_lines(result["records"]),
        *ceiling_lines(result["ceiling"]),
        *target_lines(result["targets"]),
        *trust_lines(result),
    ]
    return "\n".join(lines)


def cpu_lines(records: list[Record]) -> list[str]:
    """The server's CPU time per echoed WebSocket message, median per server and column: what
    a shared machine disturbs least."""
    found: dict[tuple[str, str], list[float]] = {}
    for record in kept(records):
        if record.get("server_cpu_us_per_message"):
            found.setdefault((record["server"], record["column"]), []).append(record["server_cpu_us_per_message"])
    if not found:
        return []
    cells = [f"{server} {column} {statistics.median(values):.0f}" for (server, column), values in found.items()]
    return ["Server CPU µs per echoed message (median): " + "; ".join(cells) + ".", ""]


def file_lines(records: list[Record]) -> list[str]:
    """The file scenarios' server CPU time per file and RSS (before the load, and its peak under
    it), medians per server and column."""
    found: dict[tuple[str, str], list[Record]] = {}
    for record in kept(records):
        if "rss_peak_kib" in record and record.get("value") is not None:
            found.setdefault((record["server"], record["column"]), []).append(record)
    if not found:
        return []
    cells = []
    for (server, column), group in found.items():
        cpu = statistics.median(r["server_cpu_ms_per_file"] for r in group if r.get("server_cpu_ms_per_file"))
        before = statistics.median(r["rss_before_kib"] for r in group) / 1024
        peak = statistics.median(r["rss_peak_kib"] for r in group) / 1024
        cells.append(f"{server} {column}: {cpu:.0f} ms CPU per file, RSS {before:.1f} MiB before, {peak:.1f} at peak")
    return ["File scenarios (medians): " + "; ".join(cells) + ".", ""]


def ceiling_lines(ceiling: dict[str, float]) -> list[str]:
    if not ceiling:
        return []
    lines = [
        f"In-process ceiling (h11 alone on the servers' CPU): parse-only {ceiling['parse_only']:,.0f} req/s "
        f"(new h11.Connection, receive_data, Request + EndOfMessage); parse and minimal response "
        f"{ceiling['cycle']:,.0f} req/s."
    ]
    share = ceiling.get("ours_native_c50_share_of_parse_only")
    if share is not None:
        lines.append(f"ours-native at c50 is {share:.0%} of the parse-only ceiling.")
    return lines + [""]


def target_lines(found: list[dict[str, Any]]) -> list[str]:
    if not found:
        return []
    lines = ["Targets of issues 6, 13 (WebSocket) and 14 (HTTP/2):", ""]
    for target in found:
        verdict = "met" if target["met"] else "NOT met"
        lines.append(f"- {target['target']}: {verdict} ({target['value']:,.2f} vs {target['bound']:,.2f})")
    return lines + [""]


def trust_lines(result: dict[str, Any]) -> list[str]:
    lines = ["Errors and non-2xx answers: " + ("none" if not result["problems"] else "")]
    lines.extend(f"- {problem}" for problem in result["problems"])
    disturbed = result["disturbance"]
    if disturbed["loadavg_1min"]:
        load = disturbed["loadavg_1min"]
        lines.append(
            f"Load average (1 min) before the measurements: {load['min']:.2f}–{load['max']:.2f}, median {load['median']:.2f}."
        )
    if disturbed["other_cpu"]:
        other = disturbed["other_cpu"]
        lines.append(
            f"Other processes took {other['median']:.0%} of the CPUs during the median load run, {other['max']:.0%} at most."
        )
    if disturbed["discarded"]:
        lines.append(f"{disturbed['discarded']} disturbed load run(s) were measured again and discarded.")
    if disturbed["busy_runs"]:
        lines.append(
            f"Still disturbed (other processes above {BUSY:.0%} of the CPUs): " + "; ".join(disturbed["busy_runs"])
        )
    return lines
