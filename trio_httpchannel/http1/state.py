"""The states of one HTTP/1.1 connection, and the rules that read them (sans-io).

Two machines run side by side, the reader's and the writer's; like an exchange's
(``trio_httpchannel._state``), each is an enum and a table of its moves, every move checked by
``advance``::

    Read: what the reader is doing, and so what its timer means

        FIRST ──a request's first byte──▶ HEAD ──dispatched, with a body──▶ BODY ──its end──▶ IDLE
        IDLE ───a request's first byte──▶ HEAD ──dispatched, without one──────────────────▶ IDLE
        FIRST, IDLE, HEAD, BODY ──no request will follow──▶ DONE, or EOF if the client's side ended
        DONE ──the client's side ends (read while handlers still run)──▶ EOF

    Write: what the responses did to the connection

        OPEN ──a response that closes the connection is delivered──▶ CLOSING ──written──▶ CLOSED
        OPEN ──the reader is done and every response is written──▶ FINISHED
        OPEN, CLOSING, CLOSED, FINISHED ──abort──▶ ABORTED

A third says what the connection holds in memory while it waits (an idle keep-alive connection
is the common one, and the one servers are sized by)::

    Shape: which tasks the connection has

        QUIET ──a request's first bytes──▶ BUSY ──idle for SETTLE_AFTER, nothing running──▶ SETTLING
        SETTLING ──the reader task ended and the nursery closed──▶ QUIET

Once the connection's nursery is done, :func:`ending` reads both to choose how it ends; the
rules the reader and the writer follow on the way are :func:`waits_for_earlier` (the order of
handlers, RFC 9112 section 9.3.2) and :func:`may_persist` (keep-alive, section 9.3).

The members are also module names, for the identity checks of the hot path (see ``_state.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .._state import ABSENT, COMPLETE, EXPECTED, FAILED, WANTED, Body, Continue, State
from .head import RequestHead

__all__ = [
    "Read",
    "READ",
    "Write",
    "WRITE",
    "Shape",
    "SHAPE",
    "Ending",
    "ending",
    "may_persist",
    "waits_for_earlier",
]


class Read(State):
    """What the reader is doing: the phase of the request it reads, which says what its timer
    is (the read scope's deadline, set only while it waits for bytes) and what its expiry means."""

    FIRST = "waiting for the first byte of the first request (timer: timeout; header_timeout in a shutdown)"
    IDLE = "waiting for the first byte of a next request (timer: timeout while no response is pending)"
    HEAD = "a request head, from its first byte until it is dispatched (timer: header_timeout, then 408)"
    BODY = "feeding a request body to its handler (timer: body_timeout per read, then 408)"
    DONE = "its last request is dispatched: it reads on only to tell the handlers when the client leaves"
    EOF = "the client's side ended (or a read failed): nothing more will be read"


FIRST: Final = Read.FIRST
IDLE: Final = Read.IDLE
HEAD: Final = Read.HEAD
BODY: Final = Read.BODY
DONE: Final = Read.DONE
EOF: Final = Read.EOF

READ: Final[Mapping[Read, frozenset[Read]]] = {
    FIRST: frozenset({HEAD, DONE, EOF}),
    IDLE: frozenset({HEAD, DONE, EOF}),
    HEAD: frozenset({BODY, IDLE, DONE, EOF}),
    BODY: frozenset({IDLE, DONE, EOF}),
    DONE: frozenset({EOF}),
    EOF: frozenset(),
}


class Write(State):
    """What the responses did to the connection, as the writer delivers them."""

    OPEN = "responses go out in request order; the connection persists after each"
    CLOSING = "the response that closes the connection is delivered: it is the last"
    CLOSED = "that response is written: the lingering close follows, unless the client's side ended"
    FINISHED = "every response is written and none closed the connection: no request followed"
    ABORTED = "the connection was aborted: nothing more is written, every task is cancelled"


OPEN: Final = Write.OPEN
CLOSING: Final = Write.CLOSING
CLOSED: Final = Write.CLOSED
FINISHED: Final = Write.FINISHED
ABORTED: Final = Write.ABORTED

WRITE: Final[Mapping[Write, frozenset[Write]]] = {
    OPEN: frozenset({CLOSING, FINISHED, ABORTED}),
    CLOSING: frozenset({CLOSED, ABORTED}),
    CLOSED: frozenset({ABORTED}),
    FINISHED: frozenset({ABORTED}),
    ABORTED: frozenset(),
}


class Shape(State):
    """Which tasks the connection has. Only a connection with work holds the seed's shape (a
    nursery, the reader task, the writer, the handlers' tasks); a quiet one is its own task
    alone, waiting for bytes, which costs an idle keep-alive connection half the memory. It
    settles only after ``SETTLE_AFTER`` (``quiet.py``) without work, so that a client sending
    one request after another never pays for the change of shape."""

    QUIET = "the connection's own task alone waits for a request's first bytes (timer: the read's, as in IDLE)"
    BUSY = "a nursery: the reader task, the writer in the connection's task, the handlers' tasks"
    SETTLING = "it was idle long enough with nothing running: the reader task ended, the writer returns"


QUIET: Final = Shape.QUIET
BUSY: Final = Shape.BUSY
SETTLING: Final = Shape.SETTLING

SHAPE: Final[Mapping[Shape, frozenset[Shape]]] = {
    QUIET: frozenset({BUSY}),
    BUSY: frozenset({SETTLING}),
    SETTLING: frozenset({QUIET}),
}


class Ending(State):
    """How a connection ends, once every task of it is done."""

    LINGER = "half-close, read and discard until the client closes or linger_timeout passes, close"
    UPGRADE = "hand the stream to the WebSocket session, which ends it"
    CLOSE = "close at once"
    ABORT = "abort (a write waited past send_timeout), then close"


LINGER: Final = Ending.LINGER
UPGRADE: Final = Ending.UPGRADE
CLOSE: Final = Ending.CLOSE
ABORT: Final = Ending.ABORT


def ending(write: Write, read: Read, upgrading: bool) -> Ending:
    """How the connection ends, from where its writer and reader stopped, and whether the reader
    stopped at a WebSocket upgrade request.

    A writer that neither returned nor was aborted was cancelled by the ``send_timeout``
    deadline: the connection is aborted. After a closing response the connection lingers (RFC
    9112 section 9.6: closing with unread bytes would make the kernel reset the response away),
    unless the client's side already ended. An upgrade happens only when every response before
    it was written and none closed the connection."""
    if write is ABORTED:
        return CLOSE
    if write is OPEN or write is CLOSING:
        return ABORT
    if write is CLOSED:
        return CLOSE if read is EOF else LINGER
    return UPGRADE if upgrading else CLOSE


def waits_for_earlier(head: RequestHead, previous: RequestHead | None) -> bool:
    """Whether the handler of ``head`` may start only once the response to ``previous``, the
    request before it, is written (RFC 9112 section 9.3.2), when that one is still in flight.

    Handlers of safe requests run concurrently. An unsafe request waits (it may change what an
    earlier response says), and so does any request after an unsafe one, or after an HTTP/1.0
    one, which is not pipelined (the seed's PERSIST_NO_PIPELINE). ``previous`` is ``None`` when
    its head could not be parsed (a refused request): nothing is dispatched after one anyway."""
    return not head.safe or previous is None or not previous.safe or previous.http_version == "1.0"


def may_persist(
    keep_alive: bool,
    body: Body,
    continue_: Continue,
    read: Read,
    shutting_down: bool,
    in_flight: int,
    unread: int | None,
    max_discard: int,
) -> bool:
    """Whether the connection may carry another request after this response (RFC 9112 section
    9.3), before the response itself has its say (``Connection: close`` from the handler, a
    stream HTTP/1.0 can only end by closing).

    Not when the request said no (``keep_alive`` false: ``Connection: close``, HTTP/1.0 without
    keep-alive) or its body failed (its end is unknown). Not when no request will follow (the
    reader is ``DONE`` or at ``EOF``, or the channel is ``shutting_down``) and this is the last
    of the ``in_flight`` responses. Otherwise yes when the body was read whole or there was
    none; no while the client still waits for ``100 Continue`` (it may never send the body, so
    where the next request starts is unknown); else yes when the ``unread`` rest of the body
    (``None``: chunked, of unknown length) can be read and thrown away, at most ``max_discard``
    bytes."""
    if not keep_alive or body is FAILED:
        return False
    if in_flight == 1 and (shutting_down or read is DONE or read is EOF):
        return False
    if body is COMPLETE or body is ABSENT:
        return True
    if continue_ is EXPECTED or continue_ is WANTED:
        return False
    return unread is not None and unread <= max_discard
