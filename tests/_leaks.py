"""The books of the leak tests: clients of one kind or many run against a loopback server under
the MockClock, then what they leave behind is counted (trio tasks in the whole task tree, open
file descriptors of the process, ``HTTPChannel.connection_count``, handler calls started versus
ended), and must be what it was before they came."""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import trio

from trio_httpchannel import HTTPChannel

Client = Callable[[int], Awaitable[None]]
"""One client: it talks to the server at the port it is given, and is gone when it returns."""
T = TypeVar("T")


class Books:
    """Handler calls started and ended."""

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0

    def count(self, handler: Callable[[Any], Awaitable[T]]) -> Callable[[Any], Awaitable[T]]:
        """``handler``, its calls counted."""

        async def counted(request: Any) -> T:
            self.started += 1
            try:
                return await handler(request)
            finally:
                self.ended += 1

        return counted


def live_tasks() -> int:
    """Every task of this trio run, found from the root task down."""

    def count(task: trio.lowlevel.Task) -> int:
        return 1 + sum(count(child) for nursery in task.child_nurseries for child in nursery.child_tasks)

    return count(trio.lowlevel.current_root_task())


def open_fds() -> int:
    """The process's open descriptors, once the garbage of earlier tests (a socket in a
    reference cycle) is collected, so that its closing is not counted as this test's."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


async def run_served(channel: HTTPChannel, books: Books, clients: Sequence[Client], *, settle: float) -> None:
    """Serve ``channel`` on a loopback port, run ``clients`` at once, and check that ``settle``
    seconds of MockClock time after they are gone nothing of theirs remains."""
    async with trio.open_nursery() as server:
        listeners = await server.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        fds, tasks = open_fds(), live_tasks()
        async with trio.open_nursery() as nursery:
            for client in clients:
                nursery.start_soon(client, port)
        await trio.sleep(settle)
        assert channel.connection_count == 0
        left = (books.started, live_tasks(), open_fds())
        assert left == (books.ended, tasks, fds), (
            f"(handlers started, tasks, fds) {left}, not {(books.ended, tasks, fds)}"
        )
        server.cancel_scope.cancel()
