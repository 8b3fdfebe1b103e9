"""The file scenarios of issue 17: a 50 MB file downloaded over and over by ``wrk -c4``, served
by Starlette's ``FileResponse`` (bench/file_app.py).

- ``file-pathsend``: ours, which advertises ``http.response.pathsend``: Starlette names the
  file and the kernel copies it to the socket (``os.sendfile``);
- ``file-chunks``: the same file without the extension, Starlette reading 64 KiB chunks in a
  thread and sending each as ``http.response.body``: ours (the extension hidden from the app),
  Hypercorn's trio worker and Uvicorn (httptools), which advertise no pathsend.

Each measurement gives MB/s (the requests per second times the file's size), the server's CPU
time per file sent (what a shared machine disturbs least) and its RSS before the load and at
its highest during it (sampled every 0.1 s): a file sent as the client reads never sits in
memory, so the RSS stays flat.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import load
from bench.file_app import FILE_ENV

if TYPE_CHECKING:
    from bench.servers import Server

SCENARIOS = ["file-pathsend", "file-chunks"]
SIZE = 50 * 1000 * 1000
CONNECTIONS = 4
APPS = {"file-pathsend": "bench.file_app:app", "file-chunks": "bench.file_app:app_without_pathsend"}
OURS = "ours-asgi"
PEERS = frozenset({"hypercorn-trio", "uvicorn-httptools"})

NOTE = (
    f"file columns: wrk -t1 -c{CONNECTIONS} downloading one {SIZE // 1000_000} MB file (GET /file) served by Starlette's "
    "FileResponse; file-pathsend: ours only (the others advertise no http.response.pathsend), file-chunks: "
    "ours with the extension hidden from the app, and the peers; MB/s = requests/s x the file's size"
)


def runs(server: str, scenario: str) -> bool:
    """Whether ``server`` is measured in ``scenario`` (every server runs the other scenarios)."""
    if scenario == "file-pathsend":
        return server == OURS
    return scenario not in SCENARIOS or server == OURS or server in PEERS


def prepare() -> None:
    """Write the file once per run (random bytes, in a temporary directory removed at exit)
    and name it in the environment the servers inherit."""
    if FILE_ENV in os.environ:
        return
    directory = Path(tempfile.mkdtemp(prefix="bench-files-"))
    atexit.register(shutil.rmtree, directory, True)
    path = directory / "big.bin"
    path.write_bytes(random.Random(17).randbytes(SIZE))
    os.environ[FILE_ENV] = str(path)


class RssPeak:
    """The server's highest RSS while it runs, sampled every 0.1 s in a thread."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = server.rss_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self.server.rss_kib())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def measure(server: Server, seconds: float, warmup: float, pin: list[str]) -> dict[str, Any]:
    """MB/s over ``seconds`` after ``warmup`` seconds of the same load; the server's CPU time
    per file and its RSS before and at its peak under the load."""
    if warmup > 0:
        load.wrk(server.port, CONNECTIONS, warmup, pin, path="/file")
        server.check_alive("the warm-up")
    rss_before = server.rss_kib()
    cpu_before = server.cpu_seconds()
    peak = RssPeak(server)
    result = load.wrk(server.port, CONNECTIONS, seconds, pin, path="/file")
    rss_peak = peak.stop()
    cpu = server.cpu_seconds() - cpu_before
    server.check_alive("the measurement")
    return {
        "value": result.rate * SIZE / 1e6,
        "rss_before_kib": rss_before,
        "rss_peak_kib": rss_peak,
        "server_cpu_ms_per_file": 1000 * cpu / result.requests if result.requests else None,
        **result.as_json(),
    }
