"""Why a WebSocket ended, and the exceptions that say so."""

from __future__ import annotations

import dataclasses

from wsproto.frame_protocol import CloseReason as _Codes

from .._errors import ProtocolError
from .._response import HeaderPairs, header_pairs

__all__ = ["CloseReason", "ConnectionClosed", "HandshakeError"]


@dataclasses.dataclass(frozen=True)
class CloseReason:
    """The code and reason of a WebSocket's close (RFC 6455 section 7.4).

    ``1005`` means the client's close frame carried no code; ``1006`` that the connection ended
    without a close frame from the client (it dropped, or never answered ours).
    """

    code: int
    reason: str = ""

    @property
    def name(self) -> str:
        """The RFC's name for ``code`` (``NORMAL_CLOSURE``...), or the range it is in."""
        try:
            return _Codes(self.code).name
        except ValueError:
            return "PRIVATE_USE" if self.code >= 4000 else "REGISTERED" if self.code >= 3000 else "UNKNOWN"


class ConnectionClosed(OSError):
    """The WebSocket is closed (or closing): raised by ``receive`` once the messages received
    before the close are taken, and by ``send`` after it.

    An ``OSError`` because the ASGI spec (2.4) asks ``send`` on a closed connection to raise one,
    and code written to survive a dropped socket catches ``OSError`` already. It is an ordinary
    end, not a server error: a handler that lets it propagate is not logged as failing.
    """

    def __init__(self, reason: CloseReason) -> None:
        super().__init__(f"the WebSocket is closed: {reason.code} {reason.name} {reason.reason}".rstrip())
        self.reason = reason


class HandshakeError(ProtocolError):
    """A request asked for a WebSocket but its handshake is not one we can accept.

    ``status`` (400, or 426 for a version other than 13) is the answer, ``headers`` go with it.
    """

    def __init__(self, status: int, message: str, headers: HeaderPairs = ()) -> None:
        super().__init__(status, message)
        self.headers = header_pairs(headers)
