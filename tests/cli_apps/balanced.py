"""The app served behind the balancers and under load (``balanced:app``, ``--app-dir`` here).

- ``/`` answers, as JSON, who answered (``pid``; ``connection``, which stays the same for the
  requests of one connection) and whom it believes it answers (``client``, ``server``,
  ``scheme``, and the PROXY protocol's ALPN and authority TLVs when there are some);
- ``/upload`` streams its answer while it reads the body: a line ``<size>`` for each chunk read,
  then ``total <bytes> <sha256>``, so a client can send a chunk only once the one before it has
  arrived (a slow upload, driven by what the app has read rather than by a clock);
- ``/download?chunks=N&size=S`` streams N chunks of S bytes, chunk ``i`` made of the byte
  ``i % 251``, so a client can check every byte.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

from trio_httpchannel import Request, Response
from trio_httpchannel.server.proxy_protocol import proxy_header


async def app(request: Request) -> Response:
    if request.path == "/upload":
        return Response(200, [("content-type", "text/plain")], _acknowledge(request))
    if request.path == "/download":
        query = parse_qs(request.query)
        chunks, size = int(query["chunks"][0]), int(query["size"][0])
        return Response(200, [("content-type", "application/octet-stream")], _chunks(chunks, size))
    return Response(200, [("content-type", "application/json")], json.dumps(_who(request)).encode())


def _who(request: Request) -> dict[str, object]:
    header = proxy_header()
    return {
        "pid": os.getpid(),
        "connection": _connection(request),
        "client": request.client,
        "server": request.server,
        "scheme": request.scheme,
        "alpn": None if header is None or header.alpn is None else header.alpn.decode(),
        "authority": None if header is None else header.authority,
    }


def _connection(request: Request) -> int:
    """Who the connection is: its own task, the parent of the nursery its requests are served in.
    Not the nursery itself, which lasts only while the connection has work: a connection idle for
    ``SETTLE_AFTER`` lets it go and makes a new one for its next request."""
    assert request.nursery is not None
    return id(request.nursery.parent_task)


async def _acknowledge(request: Request) -> AsyncIterator[bytes]:
    digest = hashlib.sha256()
    total = 0
    async for chunk in request.body:
        digest.update(chunk)
        total += len(chunk)
        yield f"{len(chunk)}\n".encode()
    yield f"total {total} {digest.hexdigest()}\n".encode()


async def _chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for index in range(count):
        yield bytes([index % 251]) * size
