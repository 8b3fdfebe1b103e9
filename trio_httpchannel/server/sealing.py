"""Sealing a listening TCP socket before its last accept, so that closing it resets nobody.

The kernel completes a TCP handshake on its own and queues the connection for ``accept``; when
the listening socket is closed, every connection still queued is reset. A server that stops
listening by taking what waits in the backlog and then closing leaves a window between its
last ``accept`` (nothing waiting) and the ``close``: a few microseconds, or a whole time slice
when the process is preempted under load, and a connection completed in it is reset after its
client (a balancer that believes it is connected) has sent its request. Behind HAProxy in TCP
mode that is a request lost (``SD`` in its log), since HAProxy retries only connections that
failed to open.

:func:`seal` closes that window on Linux: it attaches a socket filter that drops every packet
reaching the listening socket, so that from then on no handshake completes (a new client's
``SYN`` is dropped; its kernel sends it again a second later, finds the port closed and reports
the connection refused, which a balancer retries elsewhere). The connections already queued
were made before and are unaffected; :func:`unseal` removes the filter from one that inherited
it by completing its handshake while the filter was being attached.
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import sys

__all__ = ["seal", "unseal"]

_SO_ATTACH_FILTER = 26
_SO_DETACH_FILTER = 27
_BPF_RET_K = 0x06
"""``BPF_RET | BPF_K``: the program's one instruction returns a constant, here 0 (drop)."""


class _Instruction(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Instruction))]


_DROP_EVERYTHING = (_Instruction * 1)(_Instruction(_BPF_RET_K, 0, 0, 0))
_PROGRAM = bytes(_Program(1, _DROP_EVERYTHING))
"""A ``struct sock_fprog`` pointing at ``_DROP_EVERYTHING``, which lives as long as the module."""


def seal(sock: socket.socket) -> bool:
    """Make the listening socket ``sock`` complete no more handshakes (see the module's
    docstring); whether it could (Linux, TCP). Only for a socket about to be closed for good:
    anyone else listening on it would accept nothing more."""
    if not sys.platform.startswith("linux") or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, _PROGRAM)
    except OSError:
        return False
    return True


def unseal(sock: socket.socket) -> None:
    """Remove the filter :func:`seal` attached from ``sock``, a connection accepted from a sealed
    socket, if it inherited it (a socket copies its listener's filter as its handshake completes)."""
    with contextlib.suppress(OSError):  # ENOENT: it has none, the common case
        sock.setsockopt(socket.SOL_SOCKET, _SO_DETACH_FILTER, 0)
