"""The ASGI lifespan protocol: an app's startup and shutdown, once per server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import trio

from .app import Message, as_asgi3
from .http import ASGI_VERSIONS

__all__ = ["Lifespan", "LifespanError"]

logger = logging.getLogger("trio_httpchannel.asgi")


class LifespanError(Exception):
    """The application failed to start: it sent ``lifespan.startup.failed``, or raised while
    starting up. Serving it would only fail request after request."""


class Lifespan:
    """Runs an ASGI app's lifespan around serving it::

        async with Lifespan(app) as lifespan:
            await trio.serve_tcp(HTTPChannel(ASGIHandler(app, state=lifespan.state)), 8000)

    Entering sends ``lifespan.startup`` and returns once the app completed it, or raises
    :class:`LifespanError` when it failed. Leaving sends ``lifespan.shutdown`` and waits for the
    app to complete it (a failed shutdown is logged). :attr:`state` is the ``scope["state"]``
    the app fills at startup; hand it to :class:`ASGIHandler` so every request sees a copy.

    An app that does not speak the protocol (it raises, returns or sends anything before it has
    received ``lifespan.startup``, as apps that expect only ``http`` scopes do) is served without
    it, with a debug log, as Uvicorn's ``--lifespan auto`` does.
    """

    def __init__(self, app: Any) -> None:
        self.app = as_asgi3(app)
        self.state: dict[str, Any] = {}
        self._to_app_send, self._to_app = trio.open_memory_channel[Message](1)
        self._from_app, self._from_app_receive = trio.open_memory_channel[Message](1)
        self._asked = False
        self._context: Any = None

    async def __aenter__(self) -> Lifespan:
        self._context = self._running()
        await self._context.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> bool | None:
        return await self._context.__aexit__(kind, error, traceback)  # type: ignore[no-any-return]

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        body_error: BaseException | None = None
        startup_error: LifespanError | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._run_app)
            try:
                supported = await self._exchange("startup")
            except LifespanError as error:
                startup_error = error
            else:
                try:
                    yield
                except BaseException as error:  # raised again below, outside the nursery, as it is
                    body_error = error
                if supported and (body_error is None or isinstance(body_error, Exception)):
                    await self._shut_down()
            nursery.cancel_scope.cancel()
        if startup_error is not None:
            raise startup_error
        if body_error is not None:
            raise body_error

    async def _run_app(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSIONS, "state": self.state}
        with self._from_app:
            try:
                await self.app(scope, self._receive, self._send)
            except Exception as error:
                if not self._asked:
                    logger.debug("the app does not support the lifespan protocol: %r", error)
                    return
                await self._from_app.send({"type": "lifespan.failed", "message": repr(error), "error": error})

    async def _receive(self) -> Message:
        self._asked = True
        return await self._to_app.receive()

    async def _send(self, message: Message) -> None:
        if not self._asked:
            raise RuntimeError(f"{message.get('type')!r} sent in a lifespan scope before receiving anything")
        await self._from_app.send(message)

    async def _exchange(self, phase: str) -> bool:
        """Send ``lifespan.<phase>`` and wait for the answer: whether the app completed it (False
        when it does not speak the protocol); raises LifespanError when it failed."""
        await self._to_app_send.send({"type": f"lifespan.{phase}"})
        try:
            reply = await self._from_app_receive.receive()
        except trio.EndOfChannel:
            logger.debug("the app returned from its lifespan before completing %s; going on without it", phase)
            return False
        kind = reply["type"]
        if kind == f"lifespan.{phase}.complete":
            return True
        if kind in (f"lifespan.{phase}.failed", "lifespan.failed"):
            raise LifespanError(reply.get("message") or f"lifespan.{phase}.failed") from reply.get("error")
        raise LifespanError(f"the app sent {kind!r} in answer to lifespan.{phase}")

    async def _shut_down(self) -> None:
        try:
            await self._exchange("shutdown")
        except LifespanError as error:
            logger.error("the application failed to shut down: %s", error, exc_info=error.__cause__)
