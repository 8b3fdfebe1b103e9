"""WebSocket (RFC 6455) for trio-httpchannel: the handshake, the session, the native API and the
ASGI adapter. ``serve_upgrade`` is the one entry point an HTTP/1.1 connection calls;
``serve_extended_connect`` the one an HTTP/2 stream calls (RFC 8441), with an ``Opening``."""

from ._api import WebSocket, WebSocketHandler, WebSocketRequest
from ._asgi import WEBSOCKET_ASGI_VERSIONS, ASGIWebSocketHandler
from ._errors import CloseReason, ConnectionClosed, HandshakeError
from ._going_away import OpenWebSockets
from ._handshake import is_websocket_upgrade
from ._opening import Opened, Opening
from ._upgrade import serve_extended_connect, serve_upgrade

__all__ = [
    "WEBSOCKET_ASGI_VERSIONS",
    "ASGIWebSocketHandler",
    "CloseReason",
    "ConnectionClosed",
    "HandshakeError",
    "OpenWebSockets",
    "Opened",
    "Opening",
    "WebSocket",
    "WebSocketHandler",
    "WebSocketRequest",
    "is_websocket_upgrade",
    "serve_extended_connect",
    "serve_upgrade",
]
