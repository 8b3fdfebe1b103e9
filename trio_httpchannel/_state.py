"""The states of an exchange, each a small enum, and the one place their moves are written
(sans-io, the same for every protocol).

Modelled on h11's ``_state.py``: each machine is an enum and a table of the moves it allows,
and every move goes through :func:`advance`, which raises :class:`StateError` for one the table
does not list. A ``StateError`` is a bug in trio-httpchannel, never something a client did: the
connection it happens on is closed and the error logged with its traceback.

An exchange (one request on its way through a connection, ``_exchange.py``) runs five machines
side by side, each about one thing::

    Progress   how far the response has gone
               AWAITED ──given──▶ GIVEN ──head serialized──▶ SENDING ──last byte queued──▶ SENT
               GIVEN ──the body failed: its error replaces the response──▶ GIVEN

    Body       the request body
               ABSENT                      (the request has none)
               STREAMING ──its end read──▶ COMPLETE
               STREAMING ──malformed, too large, too slow──▶ FAILED

    Continue   100-continue (RFC 9110 section 10.1.1)
               NOT_EXPECTED
               EXPECTED ──the handler reads the body──▶ WANTED ──100 Continue written──▶ WRITTEN

    Dispatch   who writes the response
               LONE ──another request came first, or its stream goes to the writer──▶ QUEUED

    Client     the client, as the exchange sees it
               PRESENT ──an ASGI stream asks to be cut if it leaves──▶ WATCHED
               PRESENT, WATCHED, LEFT ──its side ended, or the connection was aborted──▶ LEFT

The members are also module names (``AWAITED`` ...): on CPython 3.11 looking a member up on its
class (``Progress.SENT``) costs ten times an identity check against a module name, since
``enum.EnumType`` defines ``__getattr__``, and these checks run several times a request.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final, TypeVar

__all__ = [
    "StateError",
    "State",
    "advance",
    "Progress",
    "PROGRESS",
    "Body",
    "BODY",
    "Continue",
    "CONTINUE",
    "Dispatch",
    "DISPATCH",
    "Client",
    "CLIENT",
]


class StateError(RuntimeError):
    """A move that its machine's table does not allow: a bug in trio-httpchannel."""


class State(enum.Enum):
    """The base of every state enum. Members hash by identity, as they compare (Enum's own
    ``__hash__`` is a Python function hashing the name, which would triple the cost of
    :func:`advance`)."""

    __hash__ = object.__hash__


S = TypeVar("S", bound=State)


def advance(moves: Mapping[S, frozenset[S]], old: S, new: S) -> S:
    """``new``, when ``moves`` lets ``old`` become it; else raise :class:`StateError`."""
    if new not in moves[old]:
        raise StateError(f"{type(old).__name__} cannot go from {old.name} to {new.name}")
    return new


class Progress(State):
    """How far the response has gone; it only moves forward, in this order."""

    AWAITED = "no response yet: the handler runs"
    GIVEN = "the response is known (returned, given early, or the body's error in its place)"
    SENDING = "its head is serialized and on its way; a streamed body is being written"
    SENT = "every byte is handed to the connection's outbox: the exchange has left the connection"


AWAITED: Final = Progress.AWAITED
GIVEN: Final = Progress.GIVEN
SENDING: Final = Progress.SENDING
SENT: Final = Progress.SENT

PROGRESS: Final[Mapping[Progress, frozenset[Progress]]] = {
    AWAITED: frozenset({GIVEN}),
    GIVEN: frozenset({GIVEN, SENDING}),
    SENDING: frozenset({SENT}),
    SENT: frozenset(),
}


class Body(State):
    """The request body, as the connection reads it for the handler."""

    ABSENT = "the request has no body"
    STREAMING = "it has one, not yet read to its end (the handler may not have asked for it)"
    COMPLETE = "it was read to its end: exactly what the client sent"
    FAILED = "it broke a rule or a limit (malformed, too large, too slow): the client gets that error"


ABSENT: Final = Body.ABSENT
STREAMING: Final = Body.STREAMING
COMPLETE: Final = Body.COMPLETE
FAILED: Final = Body.FAILED

BODY: Final[Mapping[Body, frozenset[Body]]] = {
    ABSENT: frozenset(),
    STREAMING: frozenset({COMPLETE, FAILED}),
    COMPLETE: frozenset(),
    FAILED: frozenset(),
}


class Continue(State):
    """``Expect: 100-continue``: the client waits for ``100 Continue`` before it sends its body,
    which it gets once the handler starts reading the body, unless the response comes first."""

    NOT_EXPECTED = "the client did not ask for 100 Continue"
    EXPECTED = "it asked, and the handler has not read the body yet"
    WANTED = "the handler reads the body: 100 Continue is owed before the response"
    WRITTEN = "100 Continue is written"


NOT_EXPECTED: Final = Continue.NOT_EXPECTED
EXPECTED: Final = Continue.EXPECTED
WANTED: Final = Continue.WANTED
WRITTEN: Final = Continue.WRITTEN

CONTINUE: Final[Mapping[Continue, frozenset[Continue]]] = {
    NOT_EXPECTED: frozenset(),
    EXPECTED: frozenset({WANTED}),
    WANTED: frozenset({WRITTEN}),
    WRITTEN: frozenset(),
}


class Dispatch(State):
    """Who writes the response. An exchange is *lone* when it came while nothing was in flight
    and has no body: its handler's task writes the response itself, sparing the connection's
    writer a wake-up. It is queued for the writer if another request comes before that."""

    LONE = "its handler's task writes its response"
    QUEUED = "the connection's writer writes it, in request order; it holds a pipeline slot"


LONE: Final = Dispatch.LONE
QUEUED: Final = Dispatch.QUEUED

DISPATCH: Final[Mapping[Dispatch, frozenset[Dispatch]]] = {
    LONE: frozenset({QUEUED}),
    QUEUED: frozenset(),
}


class Client(State):
    """The client, as the exchange sees it: when its side of the connection ends while the
    request is in flight, the handler is told (and its answer still written: the client may
    only have half-closed), unless the exchange is watched, in which case the connection is
    aborted (an ASGI app streaming its response stops only when cancelled)."""

    PRESENT = "its side has not ended, as far as the connection read"
    WATCHED = "the same, and its leaving aborts the connection before the response is written"
    LEFT = "its side ended, or the connection was aborted: the handler is told"


PRESENT: Final = Client.PRESENT
WATCHED: Final = Client.WATCHED
LEFT: Final = Client.LEFT

CLIENT: Final[Mapping[Client, frozenset[Client]]] = {
    PRESENT: frozenset({WATCHED, LEFT}),
    WATCHED: frozenset({LEFT}),
    LEFT: frozenset({LEFT}),
}
