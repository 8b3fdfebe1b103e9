"""The app of the file scenarios: Starlette's ``FileResponse`` serving ``BENCH_FILE`` (a path in
the environment, set by bench/files.py) at ``GET /file``, and ``Hello, world!`` at ``GET /`` (the
readiness check). ``app`` is Starlette as it is: it sends the file by ``http.response.pathsend``
where the server advertises it (ours), in 64 KiB ``http.response.body`` chunks read in a thread
elsewhere. ``app_without_pathsend`` hides the extension from it, so that ours serves the same
file the way it would without it.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route

FILE_ENV = "BENCH_FILE"


async def hello(request: Any) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


async def big_file(request: Any) -> FileResponse:
    return FileResponse(os.environ[FILE_ENV], media_type="application/octet-stream")


app = Starlette(routes=[Route("/", hello), Route("/file", big_file)])


async def app_without_pathsend(scope: Any, receive: Any, send: Any) -> None:
    """``app`` with ``http.response.pathsend`` taken out of the scope's extensions."""
    if scope["type"] == "http":
        scope = {**scope, "extensions": {k: v for k, v in scope.get("extensions", {}).items() if "pathsend" not in k}}
    await app(scope, receive, send)
