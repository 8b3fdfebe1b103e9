"""A bounded load of requests by httpx, each on a new connection, counting every failure.

A new connection per request is what a deploy must not fail: a connection refused or reset, or
a request accepted and never answered, shows up as an error here (a kept-alive connection would
also see the race every HTTP/1.1 client must retry on its own: a server closing it while idle).
"""

from __future__ import annotations

import collections
import dataclasses
import json

import httpx
import trio


@dataclasses.dataclass
class Load:
    """What a load did so far: requests answered or failed, the errors, answers by pid."""

    done: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    pids: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    _changed: trio.Event = dataclasses.field(default_factory=trio.Event)

    async def reached(self, count: int) -> None:
        """Return once ``count`` requests are done."""
        while self.done < count:
            await self._changed.wait()

    def _record(self) -> None:
        self.done += 1
        self._changed.set()
        self._changed = trio.Event()

    async def run(self, url: str, *, until: trio.Event, minimum: int, maximum: int, concurrency: int = 8) -> None:
        """GET ``url`` (an app answering JSON with a ``pid``) from ``concurrency`` tasks until
        ``until`` is set and at least ``minimum`` requests are done, never more than ``maximum``."""
        started = 0
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def one_client() -> None:
                nonlocal started
                while started < maximum and not (until.is_set() and self.done >= minimum):
                    started += 1
                    await self._one(client, url)

            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(one_client)

    async def _one(self, client: httpx.AsyncClient, url: str) -> None:
        try:
            response = await client.get(url, headers={"connection": "close"})
            if response.status_code == 200:
                self.pids[json.loads(response.content)["pid"]] += 1
            else:
                self.errors.append(f"status {response.status_code}: {response.text[:200]}")
        except httpx.HTTPError as error:
            self.errors.append(f"{type(error).__name__}: {error!r}")
        self._record()
