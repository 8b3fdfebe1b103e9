"""The regression guard: one request's instructions, one idle connection's bytes and one idle
WebSocket's bytes, against the committed baseline (``bench/baseline.json``).

The figures are repeatable where timings are not: callgrind counts the instructions the
server spends on one keep-alive GET (``bench/instructions.sh``, native and ASGI), and
``tracemalloc`` the Python memory an idle keep-alive connection holds (``bench/idle_bytes.py``)
and an idle WebSocket after one echo (``bench/ws_idle_bytes.py``, the native handler).
A figure more than ``TOLERANCE`` above its baseline fails the guard, saying by how much.
Updating the baseline is a deliberate commit: ``scripts/guard --update``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "bench" / "baseline.json"
TOLERANCE = 0.05
APPS = {"instructions_native": "bench.apps:native_app", "instructions_asgi": "bench.apps:asgi_app"}
IDLE_CONNECTIONS = 1000


def instructions(app: str) -> int:
    """Instructions of one request to ``app``, by ``bench/instructions.sh``."""
    output = _run(["bash", str(REPO / "bench" / "instructions.sh"), app])
    match = re.search(r"(\d+) instructions a request", output)
    if match is None:
        raise SystemExit(f"bench/instructions.sh printed no count:\n{output}")
    return int(match.group(1))


def idle_bytes() -> int:
    """Bytes one idle keep-alive connection holds, by ``bench/idle_bytes.py``."""
    output = _run([sys.executable, str(REPO / "bench" / "idle_bytes.py"), str(IDLE_CONNECTIONS)])
    match = re.search(r"(\d+) bytes an idle connection", output)
    if match is None:
        raise SystemExit(f"bench/idle_bytes.py printed no figure:\n{output}")
    return int(match.group(1))


def ws_idle_bytes() -> int:
    """Bytes one idle WebSocket holds, by ``bench/ws_idle_bytes.py``."""
    output = _run([sys.executable, str(REPO / "bench" / "ws_idle_bytes.py"), str(IDLE_CONNECTIONS)])
    match = re.search(r"(\d+) bytes an idle WebSocket", output)
    if match is None:
        raise SystemExit(f"bench/ws_idle_bytes.py printed no figure:\n{output}")
    return int(match.group(1))


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def measure() -> dict[str, int]:
    figures = {name: instructions(app) for name, app in APPS.items()}
    figures["idle_bytes"] = idle_bytes()
    figures["ws_idle_bytes"] = ws_idle_bytes()
    return figures


def compare(figures: dict[str, int], baseline: dict[str, int]) -> list[str]:
    """One line per figure; the failures are those more than TOLERANCE above the baseline."""
    failures = []
    for name, value in figures.items():
        base = baseline.get(name)
        if base is None:
            print(f"{name}: {value} (no baseline)")
            continue
        change = value / base - 1
        verdict = "WORSE" if change > TOLERANCE else "ok"
        print(f"{name}: {value} against {base} ({change:+.1%}) {verdict}")
        if change > TOLERANCE:
            failures.append(f"{name} is {change:.1%} above its baseline ({value} against {base})")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="write the figures measured now as the baseline")
    arguments = parser.parse_args()
    figures = measure()
    if arguments.update:
        BASELINE.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"baseline written: {figures}")
        return
    failures = compare(figures, json.loads(BASELINE.read_text()))
    if failures:
        raise SystemExit("performance guard failed (more than 5 % worse):\n  " + "\n  ".join(failures))
    print("performance guard passed")


if __name__ == "__main__":
    main()
