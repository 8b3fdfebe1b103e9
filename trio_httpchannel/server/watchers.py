"""Watchers: tasks that run beside a server or a supervisor and tell it to stop.

Shared by :func:`.serving.serve` and :class:`.supervisor.Supervisor`, which both stop gracefully
on the first SIGINT or SIGTERM and at once on the second.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Sequence

import outcome
import trio

__all__ = ["SIGNALS", "Watcher", "run_beside", "watch_signals"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a server: Ctrl-C, and what systemd, Kubernetes and the supervisor send."""

Watcher = Callable[..., Awaitable[None]]
"""A task for :func:`run_beside`: it takes ``task_status`` and reports ``started``."""


async def watch_signals(on_signal: Callable[[str], None], *, task_status: trio.TaskStatus[None]) -> None:
    """Call ``on_signal`` with the name of each of :data:`SIGNALS` received, until cancelled."""
    with trio.open_signal_receiver(*SIGNALS) as signals:
        task_status.started()
        async for number in signals:
            on_signal(signal.Signals(number).name)


async def run_beside(body: Callable[[], Awaitable[None]], watchers: Sequence[Watcher]) -> None:
    """Run ``body`` with ``watchers`` (tasks that take ``task_status``) beside it, cancelled when
    it returns. ``body``'s exception propagates as it is, not in an ExceptionGroup, so that a
    caller can catch a ``LifespanError`` or an ``OSError``."""
    async with trio.open_nursery() as nursery:
        for watcher in watchers:
            await nursery.start(watcher)
        result = await outcome.acapture(body)
        nursery.cancel_scope.cancel()
    result.unwrap()
