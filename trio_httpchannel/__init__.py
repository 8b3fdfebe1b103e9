"""An HTTP server for trio: HTTP/1.1 (h11), HTTP/2 (h2) and WebSocket (wsproto), for native
handlers and ASGI apps, with Twisted web2's HTTPChannel design carried to each protocol: a reader
feeding a bounded channel, one writer, every timer a cancel scope."""

from ._access import ResponseRecord
from ._channel import HTTPChannel
from ._config import Settings
from ._errors import ClientDisconnected, ProtocolError
from ._file import FileBody
from ._handling import Handler
from ._headers import Headers
from ._request import Request, RequestBody
from ._response import Response
from ._tls import TLSInfo, remember_server_certificate
from .server import Server, serve

__all__ = [
    "ClientDisconnected",
    "FileBody",
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
    "TLSInfo",
    "remember_server_certificate",
    "serve",
]
