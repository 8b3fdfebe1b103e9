"""Raw-socket HTTP/1.1 clients of the benchmark: one GET, a slow pipeline, and many idle
keep-alive connections. Every response must be ``200`` with a Content-Length (all the apps
send one); anything else raises ``ResponseError``.
"""

from __future__ import annotations

import os
import re
import selectors
import socket
import ssl
import time

HOST = "127.0.0.1"
GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
GET_SLEEP = b"GET /sleep HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)", re.IGNORECASE)


class ResponseError(ConnectionError):
    """A response that is not a 200 with a Content-Length, or a connection closed early."""


def complete_responses(data: bytes | bytearray) -> int:
    """How many whole responses ``data`` holds from its start; raises ResponseError on one
    that is not a 200 with a Content-Length."""
    count, at = 0, 0
    while (end := data.find(b"\r\n\r\n", at)) != -1:
        head = data[at:end]
        length = CONTENT_LENGTH.search(head)
        if not head.startswith(b"HTTP/1.1 200") or length is None:
            raise ResponseError(f"unexpected response head: {bytes(head[:200])!r}")
        at = end + 4 + int(length[1])
        if at > len(data):
            break
        count += 1
    return count


def read_responses(sock: socket.socket, count: int) -> None:
    """Read from ``sock`` until ``count`` whole responses have arrived."""
    data = bytearray()
    while complete_responses(data) < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise ResponseError(f"connection closed after {complete_responses(data)} of {count} responses")
        data += chunk


def get(port: int, timeout: float, *, tls: bool = False) -> None:
    """One GET / on a new connection (over TLS, unverified, if ``tls``); returns once its 200
    has arrived."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with context.wrap_socket(sock) as secure:
                secure.sendall(GET)
                read_responses(secure, 1)
            return
        sock.sendall(GET)
        read_responses(sock, 1)


def slow_pipeline_seconds(port: int, depth: int, timeout: float = 60.0) -> float:
    """Seconds from sending ``depth`` pipelined GET /sleep in one write on one connection to
    the arrival of the last of their responses."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        start = time.perf_counter()
        sock.sendall(GET_SLEEP * depth)
        read_responses(sock, depth)
        return time.perf_counter() - start


def open_keepalive(port: int, count: int, window: int = 50, timeout: float = 120.0) -> list[socket.socket]:
    """``count`` open connections to ``port``, each of which has sent one GET and read its whole
    response, so that the server holds each as an idle keep-alive connection. At most
    ``window`` are being set up at once (within the smallest listen backlog, Twisted's 50).
    The caller closes them."""
    ready: list[socket.socket] = []
    selector = selectors.DefaultSelector()
    deadline = time.monotonic() + timeout
    try:
        while len(ready) < count:
            while len(ready) + len(selector.get_map()) < count and len(selector.get_map()) < window:
                _connect(selector, port)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ready)} of {count} connections ready after {timeout:.0f} s")
            for key, _ in selector.select(timeout=1.0):
                if _step(selector, key):
                    ready.append(key.fileobj)  # type: ignore[arg-type]
    except BaseException:
        for sock in ready + [key.fileobj for key in selector.get_map().values()]:
            sock.close()  # type: ignore[union-attr]
        raise
    finally:
        selector.close()
    return ready


def _connect(selector: selectors.BaseSelector, port: int) -> None:
    """Start a non-blocking connect and watch it for writability."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.connect_ex((HOST, port))
    selector.register(sock, selectors.EVENT_WRITE, bytearray())


def _step(selector: selectors.BaseSelector, key: selectors.SelectorKey) -> bool:
    """Advance one connection: send the GET once connected, then read. True (and no longer
    watched) once its response is complete."""
    sock: socket.socket = key.fileobj  # type: ignore[assignment]
    if key.events == selectors.EVENT_WRITE:
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise ConnectionError(error, f"connect: {os.strerror(error)}")
        sock.send(GET)
        selector.modify(sock, selectors.EVENT_READ, key.data)
        return False
    chunk = sock.recv(4096)
    if not chunk:
        raise ResponseError("connection closed before its response")
    key.data.extend(chunk)
    if complete_responses(key.data) < 1:
        return False
    selector.unregister(sock)
    return True
