"""Apps for the command-line tests, each loaded by the CLI as ``apps:NAME`` (``--app-dir`` here)."""

from __future__ import annotations

import os
from typing import Any

from trio_httpchannel import Request, Response


async def native(request: Request) -> Response:
    """Says who asked: the client host and the scheme, as the handler sees them."""
    host = request.client[0] if isinstance(request.client, tuple) else "-"
    return Response(200, [("content-type", "text/plain")], f"native {host} {request.scheme}".encode())


async def echo(request: Request) -> Response:
    """The request body, once it has all arrived: a request that stays in flight until the
    client chooses to finish it."""
    return Response(200, [], b"echo " + await request.read())


async def crashing(request: Request) -> Response:
    """``/crash`` kills the process serving it (a worker that dies); else as :func:`native`."""
    if request.path == "/crash":
        os._exit(3)
    return await native(request)


def make_native() -> Any:
    """A factory (``--factory``)."""
    return native


class nested:
    """For a dotted attribute path: ``apps:nested.handler``."""

    handler = native


def two_arguments(first: object, second: object) -> None:
    """Neither an ASGI app nor a native handler."""
