"""Sealing a listening TCP socket before its last accept, so that closing it resets nobody.

The kernel completes a TCP handshake on its own and queues the connection for ``accept``; when
the listening socket is closed, every connection still queued is reset. A server that stops
listening by taking what waits in the backlog and then closing leaves a window between its
last ``accept`` (nothing waiting) and the ``close``: a few microseconds, or a whole time slice
when the process is preempted under load, and a connection completed in it is reset after its
client (a balancer that believes it is connected) has sent its request. Behind HAProxy in TCP
mode that is a request lost (``SD`` in its log), since HAProxy retries only connections that
failed to open.

:func:`seal` narrows that window to nothing on Linux: it attaches a socket filter that drops
every ``SYN`` reaching the listening socket, so that no new connection begins (its client's
kernel sends the ``SYN`` again a second later, finds the port closed, or a replacement
listening, and reports the connection refused, which a balancer retries elsewhere). Handshakes
already under way still complete, into the backlog the server is about to take (dropping all
packets instead would reset each of them: a round trip's worth of connections over a network).
Only a handshake begun before the seal and completed after that last accept is still reset,
where the window used to let in every connection that came while the process was preempted.
The connections accepted inherit the filter, harmlessly: an established connection receives
no ``SYN``.
"""

from __future__ import annotations

import ctypes
import socket
import sys

__all__ = ["seal"]

_SO_ATTACH_FILTER = 26


class _Instruction(ctypes.Structure):
    """A classic BPF instruction, ``struct sock_filter``."""

    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    """``struct sock_fprog``: the instructions' count and address."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Instruction))]


_TCP_FLAGS = 13
"""Where the TCP header's flags are: a TCP socket's filter sees the packet from that header."""
_SYN = 0x02

_DROP_SYN = (_Instruction * 4)(
    _Instruction(0x30, 0, 0, _TCP_FLAGS),  # BPF_LD | BPF_B | BPF_ABS: A = the flags byte
    _Instruction(0x45, 0, 1, _SYN),  # BPF_JMP | BPF_JSET | BPF_K: SYN set? next, else skip one
    _Instruction(0x06, 0, 0, 0),  # BPF_RET | BPF_K: keep nothing, the packet is dropped
    _Instruction(0x06, 0, 0, 0xFFFFFFFF),  # BPF_RET | BPF_K: keep all of it
)
_PROGRAM = bytes(_Program(len(_DROP_SYN), _DROP_SYN))
"""The ``struct sock_fprog`` for ``_DROP_SYN``, which lives as long as the module."""


def seal(sock: socket.socket) -> bool:
    """Make the listening socket ``sock`` begin no more connections (see the module's
    docstring); whether it could (Linux, TCP). Only for a socket about to be closed for good:
    anyone else listening on it would accept nothing new."""
    if not sys.platform.startswith("linux") or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, _PROGRAM)
    except OSError:
        return False
    return True
