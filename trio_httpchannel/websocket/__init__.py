"""WebSocket (RFC 6455) for trio-httpchannel: the handshake, the session, the native API and the
ASGI adapter. ``serve_upgrade`` is the one entry point an HTTP/1.1 connection calls."""

from ._errors import CloseReason, ConnectionClosed, HandshakeError
from ._handshake import is_websocket_upgrade

__all__ = [
    "CloseReason",
    "ConnectionClosed",
    "HandshakeError",
    "is_websocket_upgrade",
]
