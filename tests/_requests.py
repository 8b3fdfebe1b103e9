"""Requests as a test's client writes them, and the bounds its waits share."""

from __future__ import annotations

H = b"Host: x\r\n"
GET = b"GET / HTTP/1.1\r\n" + H + b"\r\n"
"""The plainest request: ``GET /`` on a kept-alive HTTP/1.1 connection."""

GUARD = 60
"""The ``trio.fail_after`` bound of a wait under the MockClock's autojump: had the server not
done what the test waits for, every task would block, the clock jump and the test fail at once."""

MB = 1024 * 1024


def get(path: str = "/", *extra: str, method: str = "GET") -> bytes:
    """A request for ``path`` with ``extra`` header lines and no body."""
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: example.com", *extra, "", ""]).encode()


def post(path: str, body: bytes) -> bytes:
    """A POST of ``body`` to ``path``, framed by Content-Length."""
    return get(path, f"Content-Length: {len(body)}", method="POST") + body
