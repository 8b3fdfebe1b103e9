"""What an HTTP/2 client may send, checked on the frame headers before h2 parses the frames
(sans-io).

h2 buffers a header block until its last CONTINUATION frame, up to 64 frames of
SETTINGS_MAX_FRAME_SIZE bytes each, and it answers every PING and SETTINGS frame without
limit. So the bytes are walked here first, frame header by frame header (nine bytes each; the
payloads are skipped, not copied): the encoded header block is bounded in bytes across its
CONTINUATION frames, the moment it opened is known (for ``header_timeout``), and the frames
that cost the server work without moving a request forward are paid for from token buckets.
"""

from __future__ import annotations

from h2.errors import ErrorCodes

from .._config import Settings

__all__ = ["Abuse", "InboundGuard", "TokenBucket"]

_PREFACE_LENGTH = 24
_FRAME_HEADER = 9

_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
_PING, _WINDOW_UPDATE, _CONTINUATION = 0x6, 0x8, 0x9
_KNOWN = frozenset(range(0xA))
_END_STREAM = _ACK = 0x1
_END_HEADERS = 0x4


class Abuse(Exception):
    """The client went past a bound: the connection ends with GOAWAY carrying ``error_code``."""

    def __init__(self, error_code: ErrorCodes, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


class TokenBucket:
    """At most ``rate`` spends a second, with a burst of as many; :meth:`earn` adds tokens
    (never beyond the burst) for work the client did us the favour of causing."""

    __slots__ = ("rate", "tokens", "updated")

    def __init__(self, rate: int, now: float) -> None:
        self.rate = rate
        self.tokens = float(rate)
        self.updated = now

    def spend(self, now: float) -> bool:
        """Take one token; False when none is left."""
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class InboundGuard:
    """Walks the frame headers of everything a client sends, in order, before h2 sees it.

    :meth:`feed` raises :class:`Abuse` when a header block grows past ``max_header_length``
    bytes, or when RST_STREAM frames or control frames come faster than their budget.
    ``block_opened`` is when the header block in progress began (``None`` when none is).
    """

    __slots__ = (
        "_skip",
        "_partial",
        "_block_bytes",
        "_max_block",
        "_resets",
        "_control",
        "_window_credit",
        "block_opened",
    )

    def __init__(self, settings: Settings, now: float, *, preface: bool = True) -> None:
        self._skip = _PREFACE_LENGTH if preface else 0
        self._partial = b""
        self._block_bytes = 0
        self._max_block = settings.max_header_length
        self._resets = TokenBucket(settings.h2_max_resets_per_second, now)
        self._control = TokenBucket(settings.h2_max_control_frames_per_second, now)
        self._window_credit = 0
        self.block_opened: float | None = None

    def data_frames_sent(self, count: int) -> None:
        """We sent ``count`` DATA frames: the client may acknowledge each with a WINDOW_UPDATE
        for its stream and one for the connection, free of charge."""
        self._window_credit += 2 * count

    def stream_refused(self, now: float) -> None:
        """A stream over the concurrency limit was refused: it costs as a reset does."""
        if not self._resets.spend(now):
            raise self._too_many_resets()

    def feed(self, data: bytes | bytearray, now: float) -> None:
        """Account for ``data``, the next bytes from the client (the preface included)."""
        position = 0
        end = len(data)
        if self._partial:
            needed = _FRAME_HEADER - len(self._partial)
            self._partial += data[:needed]
            position = min(needed, end)
            if len(self._partial) < _FRAME_HEADER:
                return
            self._frame(self._partial, 0, now)
            self._partial = b""
        while position < end:
            if self._skip:
                step = min(self._skip, end - position)
                self._skip -= step
                position += step
                continue
            if end - position < _FRAME_HEADER:
                self._partial = bytes(data[position:])
                return
            self._frame(data, position, now)
            position += _FRAME_HEADER

    def _frame(self, data: bytes | bytearray, at: int, now: float) -> None:
        length = int.from_bytes(data[at : at + 3], "big")
        kind = data[at + 3]
        flags = data[at + 4]
        self._skip = length
        if kind == _HEADERS:
            self._header_block(length, flags, now, opening=True)
        elif kind == _CONTINUATION:
            self._spend_control(now)
            self._header_block(length, flags, now, opening=False)
        elif kind == _DATA:
            if length == 0 and not flags & _END_STREAM:
                self._spend_control(now)
        elif kind == _RST_STREAM:
            if not self._resets.spend(now):
                raise self._too_many_resets()
        elif kind == _WINDOW_UPDATE:
            if self._window_credit:
                self._window_credit -= 1
            else:
                self._spend_control(now)
        elif kind in (_SETTINGS, _PING):
            if not flags & _ACK:
                self._spend_control(now)
        elif kind == _PRIORITY or kind not in _KNOWN:
            self._spend_control(now)

    def _header_block(self, length: int, flags: int, now: float, *, opening: bool) -> None:
        self._block_bytes = length if opening else self._block_bytes + length
        if self._block_bytes > self._max_block:
            raise Abuse(
                ErrorCodes.ENHANCE_YOUR_CALM,
                f"a header block of more than max_header_length ({self._max_block}) bytes",
            )
        if flags & _END_HEADERS:
            self.block_opened = None
            self._block_bytes = 0
        elif opening:
            self.block_opened = now

    def _spend_control(self, now: float) -> None:
        if not self._control.spend(now):
            raise Abuse(
                ErrorCodes.ENHANCE_YOUR_CALM,
                f"more than h2_max_control_frames_per_second ({self._control.rate}) frames doing nothing for a request",
            )

    def _too_many_resets(self) -> Abuse:
        return Abuse(
            ErrorCodes.ENHANCE_YOUR_CALM,
            f"streams reset or refused faster than h2_max_resets_per_second ({self._resets.rate})",
        )
