"""An HTTP/1.1 server for trio, built on h11: concurrent pipelining, cancel-scope timeouts and
lingering close, ported from Twisted web2's HTTPChannel."""

from ._access import ResponseRecord
from ._channel import HTTPChannel
from ._config import Settings
from ._errors import ClientDisconnected, ProtocolError
from ._handling import Handler
from ._headers import Headers
from ._request import Request, RequestBody
from ._response import Response
from .server import Server, serve

__all__ = [
    "ClientDisconnected",
    "HTTPChannel",
    "Handler",
    "Headers",
    "ProtocolError",
    "Request",
    "RequestBody",
    "Response",
    "ResponseRecord",
    "Server",
    "Settings",
    "serve",
]
