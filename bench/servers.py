"""The servers under test: their command lines, and starting, watching and stopping them.

Every server is one process serving ``bench.apps`` (or the Twisted script) on 127.0.0.1 with
no access log. Hypercorn's supervisor runs the one worker as a child, so whatever is read of a
server (RSS, CPU time) is summed over its process tree.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import clients, files, http2

BIN = Path(sys.executable).parent
KEEP_ALIVE = "300"
"""Seconds Uvicorn and Hypercorn keep an idle connection (their defaults are 5 s), so that the
idle scenario's connections stay open while it measures. Ours and Twisted keep theirs by
default for 75 s and 12 h."""


WEBSOCKET_SCENARIOS = frozenset({"ws-echo", "ws-idle", "ws-idle-deflate"})


def app_for(scenario: str, http_app: str) -> str:
    """``bench.apps``' app for ``scenario``: the WebSocket scenarios' echo, the file scenarios'
    Starlette app (bench/file_app.py), or ``http_app``."""
    if scenario in files.APPS:
        return files.APPS[scenario]
    if scenario not in WEBSOCKET_SCENARIOS:
        return f"bench.apps:{http_app}"
    return "bench.apps:native_websocket_app" if http_app == "native_app" else "bench.apps:asgi_websocket_app"


def ours(app: str, workers: int = 1) -> Callable[[int, str], list[str]]:
    """Our CLI serving ``bench.apps:<app>`` with ``workers`` processes; for slow8 with
    ``--max-pipeline 8`` (default 4); over TLS in the HTTP/2 scenarios that ask for it."""

    def argv(port: int, scenario: str) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "trio_httpchannel",
            app_for(scenario, app),
            "--port",
            str(port),
            "--no-access-log",
        ]
        command += ["--workers", str(workers)] if workers > 1 else []
        command += http2.tls_options(scenario)
        return command + (["--max-pipeline", "8"] if scenario == "slow8" else [])

    return argv


def uvicorn(http: str, ws: str | None = None) -> Callable[[int, str], list[str]]:
    """Uvicorn on asyncio with the ``http`` protocol implementation (h11 or httptools) and, when
    given, the ``ws`` WebSocket one (websockets or wsproto)."""

    def argv(port: int, scenario: str) -> list[str]:
        return [
            str(BIN / "uvicorn"), "--http", http, *(["--ws", ws] if ws else []), "--loop", "asyncio",
            "--no-access-log", "--port", str(port), "--timeout-keep-alive", KEEP_ALIVE, app_for(scenario, "asgi_app"),
        ]  # fmt: skip

    return argv


def hypercorn(port: int, scenario: str) -> list[str]:
    """Hypercorn's trio worker (over TLS in the HTTP/2 scenarios that ask for it)."""
    return [
        str(BIN / "hypercorn"), "-k", "trio", "--bind", f"127.0.0.1:{port}",
        "--keep-alive", KEEP_ALIVE, *http2.hypercorn_options(scenario), app_for(scenario, "asgi_app"),
    ]  # fmt: skip


def twisted(port: int, scenario: str) -> list[str]:
    """twisted.web with the same response as a native Resource."""
    return [sys.executable, "-m", "bench.twisted_server", str(port)]


SERVERS: dict[str, Callable[[int, str], list[str]]] = {
    "ours-asgi": ours("asgi_app"),
    "ours-native": ours("native_app"),
    "hypercorn-trio": hypercorn,
    "uvicorn-h11": uvicorn("h11"),
    "uvicorn-httptools": uvicorn("httptools"),
    "uvicorn-websockets": uvicorn("httptools", "websockets"),
    "uvicorn-wsproto": uvicorn("httptools", "wsproto"),
    "twisted": twisted,
}
"""Every server by name, as a function of (port, scenario) giving its command line."""

WEBSOCKET_SERVERS = frozenset({"ours-asgi", "ours-native", "hypercorn-trio", "uvicorn-websockets", "uvicorn-wsproto"})
"""The servers of the WebSocket scenarios; the two Uvicorn WebSocket entries are Uvicorn-httptools
for HTTP, so they take no part in the HTTP scenarios."""


def serves(name: str, scenario: str) -> bool:
    """Whether server ``name`` is measured in ``scenario``."""
    if scenario in WEBSOCKET_SCENARIOS:
        return name in WEBSOCKET_SERVERS
    return name not in ("uvicorn-websockets", "uvicorn-wsproto")


WORKER_SERVERS: dict[str, Callable[[int, str], list[str]]] = {
    "ours-native-1w": ours("native_app"),
    "ours-native-2w": ours("native_app", workers=2),
    "ours-asgi-1w": ours("asgi_app"),
    "ours-asgi-2w": ours("asgi_app", workers=2),
}
"""``--workers-scaling``'s servers: ours with one and two worker processes (SO_REUSEPORT),
run unpinned, so that two workers can use both CPUs (which the load tool shares)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """One running server process (group), started with ``start`` and ended with ``stop``."""

    def __init__(self, name: str, scenario: str, pin: list[str], log: Path) -> None:
        self.name = name
        self.port = free_port()
        self.argv = {**SERVERS, **WORKER_SERVERS}[name](self.port, scenario)
        self.tls = scenario in http2.TLS_SCENARIOS
        with log.open("ab") as sink:
            sink.write(f"=== {name} {scenario}: {' '.join(self.argv)}\n".encode())
            self.process = subprocess.Popen(
                pin + self.argv, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.log = log

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once a GET / gets its 200; raise RuntimeError if the process exits or
        ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            try:
                clients.get(self.port, timeout=2.0, tls=self.tls)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s; see {self.log}")

    def check_alive(self, during: str) -> None:
        """Raise RuntimeError if the server process has exited (crashed) during ``during``."""
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode} during {during}; see {self.log}")

    def pids(self) -> list[int]:
        """The server process and its descendants."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        tree, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    def rss_kib(self) -> int:
        """Resident memory of the process tree in KiB (VmRSS summed)."""
        total = 0
        for pid in self.pids():
            for line in _read(f"/proc/{pid}/status").splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total

    def fd_count(self) -> int:
        """Open file descriptors of the process tree."""
        total = 0
        for pid in self.pids():
            try:
                total += len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                pass
        return total

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process tree has used so far."""
        ticks = 0
        for pid in self.pids():
            fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)[-1].split()
            if len(fields) > 12:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM the process group and wait up to 10 s for the server to exit, then SIGKILL
        whatever of the group is left."""
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    """Send ``signum`` to the process group ``pgid`` if any of it is left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _read(path: str) -> str:
    """The text of a /proc file, or '' if the process has gone."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""
