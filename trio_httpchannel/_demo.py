"""The built-in demo app: what `scripts/serve` shows with no app of your own."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator

import trio

from ._request import Request
from ._response import Response

__all__ = ["demo"]

_PAGE = """<!doctype html>
<title>trio-httpchannel</title>
<h1>trio-httpchannel is serving</h1>
<p>{method} {target} HTTP/{version} from {client}</p>
<table>{rows}</table>
<ul>
<li><a href="/stream">/stream</a>: a streamed, chunked response, one line a second
<li>POST to <a href="/echo">/echo</a>: your request body, echoed back
</ul>
"""


async def demo(request: Request) -> Response:
    """Shows the request, streams at ``/stream``, echoes ``POST /echo``."""
    if request.path == "/stream":
        return Response(200, [("content-type", "text/plain; charset=utf-8")], _count_slowly())
    if request.path == "/echo":
        body = await request.read()
        content_type = request.headers.get("content-type") or "application/octet-stream"
        return Response(200, [("content-type", content_type)], body)
    return Response(200, [("content-type", "text/html; charset=utf-8")], _page(request).encode())


def _page(request: Request) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>" for name, value in request.headers
    )
    return _PAGE.format(
        method=html.escape(request.method),
        target=html.escape(request.target),
        version=request.http_version,
        client=html.escape(str(request.client)),
        rows=rows,
    )


async def _count_slowly() -> AsyncIterator[bytes]:
    for number in range(1, 6):
        yield f"line {number} of 5\n".encode()
        await trio.sleep(1)
