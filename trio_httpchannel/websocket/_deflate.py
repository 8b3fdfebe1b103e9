"""permessage-deflate (RFC 7692): choosing an offer, and inflating no further than a message may be.

wsproto's ``PerMessageDeflate`` does the compression. Two things are added here:

- Offers are checked as RFC 7692 section 7 asks (unknown, repeated or invalid parameters: the
  offer is declined) and the first acceptable one is taken, each with a fresh extension: wsproto's
  own negotiation feeds every offer to one extension object, whose parameters then mix.
- Inflation is bounded: wsproto inflates each received chunk whole, so a 64 KiB read of a
  compression bomb would become 64 MiB before anyone could count it. Here a compressed payload is
  inflated a slice at a time and the message fails with 1009 as soon as it passes ``max_size``.
  Also, a control frame between the fragments of a compressed message leaves the message's
  compression state alone (wsproto's resets it and inflates the rest as if uncompressed).
"""

from __future__ import annotations

from collections.abc import Sequence

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import (
    CloseReason,
    FrameDecoder,
    FrameProtocol,
    Opcode,
    RsvBits,
)

__all__ = ["BoundedDeflate", "negotiate_deflate"]

_NAME = "permessage-deflate"
_FLAGS = frozenset({"server_no_context_takeover", "client_no_context_takeover"})
_WINDOW_PARAMETERS = frozenset({"server_max_window_bits", "client_max_window_bits"})
_WINDOW_BITS = range(9, 16)
"""zlib's raw deflate takes window sizes of 9 to 15 bits (RFC 7692 allows 8: such offers are
declined)."""
_SLICE = 1024
"""Compressed bytes inflated at once: deflate inflates at most about 1032-fold, so a message
overshoots ``max_size`` by at most about 1 MiB before it is stopped."""


class BoundedDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate, with each message inflated to at most ``max_size`` bytes."""

    def __init__(self, max_size: int) -> None:
        super().__init__()
        self._max_size = max_size
        self._inflated = 0
        self._data_frame = False
        self._compressed = False
        self._in_message = False

    def frame_inbound_header(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self._compressed = rsv.rsv1
            self._inflated = 0
            self._in_message = True
        self._data_frame = not opcode.iscontrol()
        return super().frame_inbound_header(proto, opcode, rsv, payload_length)

    def frame_inbound_payload_data(self, proto: FrameDecoder | FrameProtocol, data: bytes) -> bytes | CloseReason:
        if not (self._data_frame and self._compressed):
            return super().frame_inbound_payload_data(proto, data)
        pieces = []
        for start in range(0, len(data), _SLICE):
            piece = super().frame_inbound_payload_data(proto, data[start : start + _SLICE])
            if isinstance(piece, CloseReason):
                return piece
            if self._too_big(piece):
                return CloseReason.MESSAGE_TOO_BIG
            pieces.append(piece)
        return b"".join(pieces)

    def frame_inbound_complete(self, proto: FrameDecoder | FrameProtocol, fin: bool) -> bytes | CloseReason | None:
        if not self._data_frame and self._in_message:
            return None
        if self._data_frame and fin:
            self._in_message = False
        result = super().frame_inbound_complete(proto, fin)
        if isinstance(result, bytes) and self._compressed and self._too_big(result):
            return CloseReason.MESSAGE_TOO_BIG
        return result

    def _too_big(self, inflated: bytes) -> bool:
        self._inflated += len(inflated)
        return self._inflated > self._max_size


def negotiate_deflate(offers: Sequence[str], max_size: int) -> tuple[BoundedDeflate, str] | None:
    """The extension for the first acceptable permessage-deflate offer among ``offers`` (the
    elements of the client's Sec-WebSocket-Extensions), and the value that accepts it; ``None``
    when none is acceptable."""
    for offer in offers:
        name, _, parameters = offer.partition(";")
        if name.strip().lower() != _NAME:
            continue
        normalized = _normalize(parameters)
        if normalized is None:
            continue
        extension = BoundedDeflate(max_size)
        try:
            accepted = extension.accept(f"{_NAME}; {normalized}")
        except ValueError:
            continue
        if accepted is None:
            continue
        return extension, f"{_NAME}; {accepted}" if accepted else _NAME
    return None


def _normalize(parameters: str) -> str | None:
    """The parameters of one offer as ``name[=value]; ...`` with quotes removed, or ``None``
    when RFC 7692 section 7 says to decline it."""
    seen: set[str] = set()
    normalized = []
    for parameter in filter(None, (p.strip() for p in parameters.split(";"))):
        name, has_value, value = (part.strip() for part in parameter.partition("="))
        name = name.lower()
        value = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
        if name in seen:
            return None
        seen.add(name)
        if name in _FLAGS or (name == "client_max_window_bits" and not has_value):
            if has_value:
                return None
            normalized.append(name)
        elif name in _WINDOW_PARAMETERS:
            if not (value.isascii() and value.isdigit() and int(value) in _WINDOW_BITS):
                return None
            normalized.append(f"{name}={int(value)}")
        else:
            return None
    return "; ".join(normalized)
