"""The command line as a subprocess: started on a free port, watched through its output.

Every wait is for something the server prints or sends, bounded by ``fail_after``; nothing
sleeps. Server messages are on stderr, the access log on stdout; both are collected as lines.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest
import trio
from _raw_client import RawResponse, ask
from _requests import GET

APPS = Path(__file__).parent
STARTUP_WAIT = 30
URL = re.compile(r"serving \S+ .*?on (?P<url>(?P<scheme>https?)://(?P<host>[^\s,]+):(?P<port>\d+)|unix:\S+)")


class Output:
    """The lines of one output stream of the process, as they come."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._changed = trio.Event()

    async def collect(self, stream: trio.abc.ReceiveStream) -> None:
        pending = b""
        while data := await stream.receive_some(65536):
            pending += data
            *lines, pending = pending.split(b"\n")
            self.lines += [line.decode(errors="replace") for line in lines]
            self._changed.set()
            self._changed = trio.Event()
        if pending:
            self.lines.append(pending.decode(errors="replace"))
        self.closed = True
        self._changed.set()

    async def wait_for(self, pattern: str, *, count: int = 1, timeout: float = STARTUP_WAIT) -> re.Match[str]:
        """The ``count``-th line that matches ``pattern``, once it is printed; fails at once
        when the stream closes without it."""
        regex = re.compile(pattern)
        with trio.fail_after(timeout):
            while True:
                matches = [match for line in self.lines if (match := regex.search(line))]
                if len(matches) >= count:
                    return matches[count - 1]
                assert not self.closed, f"no line matching {pattern!r} in:\n{self.text}"
                await self._changed.wait()

    async def wait_closed(self) -> None:
        while not self.closed:
            await self._changed.wait()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class ServerProcess:
    """One run of ``python -m trio_httpchannel``."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.stdout = Output()
        self.stderr = Output()
        self.host = ""
        self.port = 0

    async def started(self) -> re.Match[str]:
        """Wait for the startup line; remember the host and port it names."""
        match = await self.stderr.wait_for(URL.pattern)
        if match.group("port"):
            self.host = match.group("host").strip("[]")
            self.port = int(match.group("port"))
        return match

    async def open(self) -> trio.SocketStream:
        return await trio.open_tcp_stream(self.host, self.port)

    async def ask(self, request: bytes = GET) -> RawResponse:
        """``request`` on a new connection; its response."""
        return await ask(await self.open(), request)

    def signal(self, number: int = signal.SIGTERM) -> None:
        self.process.send_signal(number)

    async def exit_status(self, timeout: float = STARTUP_WAIT) -> int:
        """The exit status, once the process has exited and all its output is read."""
        with trio.fail_after(timeout):
            status = await self.process.wait()
            await self.stdout.wait_closed()
            await self.stderr.wait_closed()
        return status


Start = Callable[..., Awaitable[ServerProcess]]


class Processes:
    """The processes a test starts, their output collected in ``nursery``; ``kill_all`` at the
    end of the test kills those still running."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._started: list[ServerProcess] = []

    async def start(self, command: Sequence[str], env: dict[str, str], pass_fds: Sequence[int] = ()) -> ServerProcess:
        """``command`` running with ``env`` added to this process's environment."""
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        process = await trio.lowlevel.open_process(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, pass_fds=pass_fds
        )
        server = ServerProcess(process)
        self._started.append(server)
        assert process.stdout is not None and process.stderr is not None
        self._nursery.start_soon(server.stdout.collect, process.stdout)
        self._nursery.start_soon(server.stderr.collect, process.stderr)
        return server

    async def kill_all(self) -> None:
        for server in self._started:
            if server.process.returncode is None:
                server.process.kill()
            with trio.CancelScope(shield=True):
                await server.process.wait()


@pytest.fixture
async def cli(nursery: trio.Nursery) -> AsyncIterator[Start]:
    """``server = await cli(*args, env={...}, wait=True)`` runs the command line on a free
    loopback port with ``--app-dir`` set to the test apps, and (unless ``wait=False``) waits for
    its startup line. Every process still running at the end of the test is killed."""
    processes = Processes(nursery)

    async def start(
        *args: str, env: dict[str, str] | None = None, wait: bool = True, pass_fds: Sequence[int] = ()
    ) -> ServerProcess:
        command = [sys.executable, "-m", "trio_httpchannel", "--port", "0", "--app-dir", str(APPS), *args]
        server = await processes.start(command, env or {}, pass_fds)
        if wait:
            await server.started()
        return server

    yield start
    await processes.kill_all()
