"""Listening sockets: bound for TCP or a Unix socket, or adopted from an inherited descriptor.

Plain blocking ``socket.socket`` objects, made before trio runs, so that a supervisor can bind
once and hand the same sockets to every worker process it starts (see :mod:`.supervisor`).
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
from collections.abc import Sequence

__all__ = ["bind", "close_sockets", "reuse_port_balances", "url"]

_BACKLOG = socket.SOMAXCONN


def bind(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    uds: str | None = None,
    fd: int | None = None,
    reuse_port: bool = False,
) -> list[socket.socket]:
    """Listening sockets: the inherited socket ``fd`` if given, else a Unix socket at ``uds``,
    else TCP on every address ``host`` resolves to (``""`` for all interfaces).

    ``reuse_port`` sets ``SO_REUSEPORT``, so that several processes can each bind the port and
    the kernel spreads connections over them. Port 0 picks a free port, the same one for every
    address. Raises ``OSError``.
    """
    if fd is not None:
        return [_adopt(fd)]
    if uds is not None:
        return [_bind_unix(uds)]
    return _bind_tcp(host, port, reuse_port)


def reuse_port_balances() -> bool:
    """Whether ``SO_REUSEPORT`` spreads connections over the processes sharing a port (Linux);
    elsewhere it exists with other meanings, and workers share one socket instead."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _adopt(fd: int) -> socket.socket:
    sock = socket.socket(fileno=fd)
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise OSError(errno.ENOTSOCK, f"file descriptor {fd} is not a stream socket")
    sock.listen(_BACKLOG)
    return sock


def _bind_unix(path: str) -> socket.socket:
    _remove_stale_socket_file(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _remove_stale_socket_file(path: str) -> None:
    """Remove a socket file that nobody listens on (left by a server that died); a live one is
    another server's, and binding will fail with 'address already in use'."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except FileNotFoundError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)


def _bind_tcp(host: str, port: int, reuse_port: bool) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            _set_options(sock, reuse_port)
            if sockets[0] is not sock:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(_BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _set_options(sock: socket.socket, reuse_port: bool) -> None:
    if os.name != "nt":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)


def url(sock: socket.socket, *, tls: bool = False) -> str:
    """Where ``sock`` listens, as a clickable ``http(s)://host:port`` or ``unix:PATH``."""
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{address}"
    host = f"[{address[0]}]" if sock.family == socket.AF_INET6 else address[0]
    return f"{'https' if tls else 'http'}://{host}:{address[1]}"


def close_sockets(sockets: Sequence[socket.socket], uds: str | None) -> None:
    """Close listening sockets, and remove the socket file ``uds`` that :func:`bind` made."""
    for sock in sockets:
        sock.close()
    if uds is not None:
        try:
            os.unlink(uds)
        except FileNotFoundError:
            pass
