"""Real balancers for the tests: HAProxy and nginx, started from the configurations in
``deploy/`` (each ``@NAME@`` replaced), in the foreground, in a temporary directory, on
loopback addresses; stopped at the end of the test (its workers with it).

A balancer that is missing skips the test with the reason: ``scripts/test`` installs the Debian
packages ``haproxy`` and ``nginx`` when it runs as root, so only a machine without them skips.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio

from .harness import Output

DEPLOY = Path(__file__).parents[2] / "deploy"
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
READY_POLLS = 400
READY_POLL_INTERVAL = 0.025
STOP_WAIT = 10


def free_port(host: str) -> int:
    """A port free on ``host`` now (a balancer binds it a moment later; nothing else here does)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def address(host: str) -> tuple[str, int]:
    return host, free_port(host)


def spec(where: tuple[str, int]) -> str:
    return f"{where[0]}:{where[1]}"


def configuration(name: str, **values: str) -> str:
    """``deploy/NAME`` with each ``@KEY@`` replaced by ``values[KEY.lower()]``."""
    text = (DEPLOY / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key.upper()}@", value)
    left = re.findall(r"@[A-Z0-9_]+@", text)
    assert not left, f"{name}: no value for {', '.join(left)}"
    return text


def binary(name: str) -> str:
    """The balancer's executable, or skip: the reason says how to get it."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip(f"{name} is not installed (apt-get install {name}; scripts/test does it when run as root)")


async def wait_listening(where: tuple[str, int], process: trio.Process, output: Output) -> None:
    """Poll until ``where`` accepts a connection: at most READY_POLLS times, failing at once
    if ``process`` exits."""
    for _ in range(READY_POLLS):
        if process.returncode is not None:
            await output.wait_closed()
            raise AssertionError(f"the balancer exited with {process.returncode}:\n{output.text}")
        try:
            with socket.create_connection(where, timeout=1):
                return
        except ConnectionRefusedError:
            await trio.sleep(READY_POLL_INTERVAL)
    raise AssertionError(f"nothing listens on {spec(where)} after {READY_POLLS} polls:\n{output.text}")


Balancer = Callable[..., Awaitable[Output]]


@pytest.fixture
async def balancer(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[Balancer]:
    """``await balancer("haproxy" | "nginx", "deploy-file", listen=(host, port), **values)``
    writes the configuration into a temporary directory, starts the balancer in the foreground
    and returns its stderr (its log, as it comes) once ``listen`` accepts connections. Stopped
    at the end of the test."""
    processes: list[trio.Process] = []

    async def start(kind: str, name: str, *, listen: tuple[str, int], **values: str) -> Output:
        run_dir = tmp_path / f"{kind}-{len(processes)}"
        run_dir.mkdir()
        path = run_dir / name
        if name == "nginx-stream.conf":
            values["load_stream_module"] = f"load_module {STREAM_MODULE};" if STREAM_MODULE.exists() else ""
        path.write_text(configuration(name, listen=spec(listen), run_dir=str(run_dir), **values))
        if kind == "haproxy":
            command = [binary("haproxy"), "-db", "-f", str(path)]
        else:
            command = [binary("nginx"), "-p", str(run_dir), "-e", "stderr", "-c", str(path), "-g", "daemon off;"]
        process = await trio.lowlevel.open_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        processes.append(process)
        output = Output()
        assert process.stderr is not None
        nursery.start_soon(output.collect, process.stderr)
        await wait_listening(listen, process, output)
        return output

    yield start
    for process in processes:
        with trio.CancelScope(shield=True):
            await stop(process)


async def stop(process: trio.Process) -> None:
    """SIGTERM, which both balancers take as "stop now" and pass on to their worker processes
    (nginx's workers outlive a SIGKILLed master), then SIGKILL if it is still there."""
    if process.returncode is None:
        process.terminate()
    with trio.move_on_after(STOP_WAIT):
        await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()
