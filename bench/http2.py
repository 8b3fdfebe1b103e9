"""The HTTP/2 scenarios of issue 14: h2load speaking HTTP/2 over cleartext (prior knowledge) and
over TLS (ALPN ``h2``), and our HTTP/1.1 pipelined on one connection to compare with.

- ``h2c-10x100`` / ``h2c-1x100``: ``h2load -c10|-c1 -m100``, prior knowledge on http://;
- ``h2-10x100`` / ``h2-1x100``: the same on https:// with ALPN ``h2`` (a self-signed P-256
  certificate made once per run with openssl; h2load does not verify it);
- ``h1-1x100``: ``h2load --h1 -c1 -m100``, 100 GETs pipelined on one HTTP/1.1 connection.

Only the servers that speak HTTP/2 run them: ours and Hypercorn's trio worker (Uvicorn has no
HTTP/2; our Twisted script serves cleartext HTTP/1.1 only). The targets: ≥ 3 × Hypercorn-trio,
and ours over HTTP/2 on one connection at least ours over HTTP/1.1 pipelined on one.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import load

SCENARIOS = ["h2c-10x100", "h2c-1x100", "h2-10x100", "h2-1x100", "h1-1x100"]
TLS_SCENARIOS = frozenset({"h2-10x100", "h2-1x100"})
SERVERS = frozenset({"ours-asgi", "ours-native", "hypercorn-trio"})
"""The servers that speak HTTP/2 (``h1-1x100`` is run by them too, as the comparison)."""
STREAMS = 100
HYPERCORN_CONFIG = Path(__file__).with_name("hypercorn-h2.toml")

LOADS: dict[str, Callable[[int, float, list[str]], load.Load]] = {
    "h2c-10x100": lambda port, seconds, pin: load.h2load_h2(f"http://127.0.0.1:{port}/", 10, STREAMS, seconds, pin),
    "h2c-1x100": lambda port, seconds, pin: load.h2load_h2(f"http://127.0.0.1:{port}/", 1, STREAMS, seconds, pin),
    "h2-10x100": lambda port, seconds, pin: load.h2load_h2(f"https://127.0.0.1:{port}/", 10, STREAMS, seconds, pin),
    "h2-1x100": lambda port, seconds, pin: load.h2load_h2(f"https://127.0.0.1:{port}/", 1, STREAMS, seconds, pin),
    "h1-1x100": lambda port, seconds, pin: load.h2load(port, 1, STREAMS, seconds, pin),
}

NOTE = (
    "HTTP/2 columns: h2load -t1 -cN -m100 (h2c: prior knowledge in cleartext; h2: TLS with ALPN h2, "
    "self-signed P-256 certificate), h1-1x100: h2load --h1 -c1 -m100 (100 GETs pipelined on one connection); "
    "run only against the servers that speak HTTP/2, with their defaults but Hypercorn's keep_alive_max_requests "
    "(1000 a connection) lifted by bench/hypercorn-h2.toml, since h2load does not reconnect"
)


def runs(server: str, scenario: str) -> bool:
    """Whether ``server`` is measured in ``scenario`` (every server runs the HTTP/1.1 ones)."""
    return scenario not in SCENARIOS or server in SERVERS


def tls_options(scenario: str) -> list[str]:
    """The ``--certfile``/``--keyfile`` options (the same for ours and Hypercorn) of a TLS
    scenario; none for the others."""
    if scenario not in TLS_SCENARIOS:
        return []
    certfile, keyfile = certificate()
    return ["--certfile", str(certfile), "--keyfile", str(keyfile)]


def hypercorn_options(scenario: str) -> list[str]:
    """Hypercorn's options in ``scenario``: in the HTTP/2 ones, TLS where asked and
    ``hypercorn-h2.toml``, which lifts its cap of 1000 requests a connection (h2load does not
    reconnect, so the cap would end each connection's load after 1000 requests)."""
    if scenario not in SCENARIOS:
        return []
    return ["--config", str(HYPERCORN_CONFIG), *tls_options(scenario)]


@functools.cache
def certificate() -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made once per run (removed at exit)."""
    directory = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    atexit.register(shutil.rmtree, directory, True)
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(keyfile), "-out", str(certfile), "-days", "2", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return certfile, keyfile


def targets(median: Callable[[str, str], float | None]) -> list[tuple[str, float | None, str, float | None]]:
    """Issue 14's targets, as ``report.targets`` lists them: (label, value, "≥", bound)."""
    checks: list[tuple[str, float | None, str, float | None]] = []
    for ours in ("ours-asgi", "ours-native"):
        for column in SCENARIOS[:4]:
            peer = median("hypercorn-trio", column)
            bound = None if peer is None else 3 * peer
            checks.append((f"{column}: {ours} ≥ 3 × hypercorn-trio", median(ours, column), "≥", bound))
        for column in ("h2c-1x100", "h2-1x100"):
            label = f"{column}: {ours} ≥ its h1-1x100 (HTTP/1.1 pipelined on one connection)"
            checks.append((label, median(ours, column), "≥", median(ours, "h1-1x100")))
    return checks
