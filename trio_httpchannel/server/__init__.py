"""Serving a channel: listening sockets, one process's server, worker processes.

The only package that owns listening sockets, signals and processes. :func:`serve` runs one
process's server; :class:`Supervisor` runs several of them in worker processes. The command line
(:mod:`.cli` and the modules it uses) lives here too, but is imported only by its entry point.
"""

from .proxy_headers import ProxyHeaders, TrustedProxies
from .serving import DEFAULT_GRACEFUL_TIMEOUT, Server, serve
from .sockets import bind, close_sockets, reuse_port_balances, url
from .supervisor import Supervisor, WorkerFailed, WorkerHandoff
from .tls import CERT_REQS, TLSConfigError, tls_context

__all__ = [
    "CERT_REQS",
    "DEFAULT_GRACEFUL_TIMEOUT",
    "ProxyHeaders",
    "Server",
    "Supervisor",
    "TLSConfigError",
    "TrustedProxies",
    "WorkerFailed",
    "WorkerHandoff",
    "bind",
    "close_sockets",
    "reuse_port_balances",
    "serve",
    "tls_context",
    "url",
]
