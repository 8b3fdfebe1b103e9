"""What the server running in this process holds for the connections another process opens,
by ``tracemalloc``: the shared part of ``idle_bytes.py``, ``ws_idle_bytes.py`` and
``ws_h2_idle_bytes.py``."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import trio
import trio.testing

__all__ = ["held_snapshots"]


async def held_snapshots(
    client_code: str,
    arguments: list[str],
    opened: Callable[[], bool],
    *,
    frames: int = 1,
    cwd: Path | None = None,
) -> tuple[tracemalloc.Snapshot, tracemalloc.Snapshot]:
    """Snapshots before a client (``python -c client_code *arguments``) connects, and once it
    printed its ready line, ``opened()`` holds and every task of this process is blocked; the
    client is then ended. ``frames``: how many frames each allocation keeps (for ``--top``)."""
    await trio.testing.wait_all_tasks_blocked()
    tracemalloc.start(frames)
    before = tracemalloc.take_snapshot()
    client = subprocess.Popen(
        [sys.executable, "-c", client_code, *arguments], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=cwd
    )
    assert client.stdout is not None and client.stdin is not None
    try:
        ready = await trio.to_thread.run_sync(client.stdout.readline)
        if not ready.startswith(b"ready"):
            raise SystemExit("the client failed")
        while not opened():
            await trio.sleep(0.01)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
        client.stdin.close()
        client.wait()
    return before, after
