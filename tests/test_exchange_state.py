"""An exchange's state machines (``_state.py``) and the exchange moving through them, without
streams: every move a table lists is taken, every other one raises ``StateError``."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest

from trio_httpchannel import ClientDisconnected, ProtocolError, Response, Settings
from trio_httpchannel._exchange import Exchange
from trio_httpchannel._state import (
    BODY,
    CLIENT,
    CONTINUE,
    DISPATCH,
    PROGRESS,
    Body,
    Client,
    Continue,
    Dispatch,
    Progress,
    State,
    StateError,
    advance,
)
from trio_httpchannel.http1.head import RequestHead, parse_head

MACHINES: list[tuple[type[State], Mapping[State, frozenset[State]], set[State]]] = [
    (Progress, PROGRESS, {Progress.AWAITED}),
    (Body, BODY, {Body.ABSENT, Body.STREAMING}),
    (Continue, CONTINUE, {Continue.NOT_EXPECTED, Continue.EXPECTED}),
    (Dispatch, DISPATCH, {Dispatch.LONE, Dispatch.QUEUED}),
    (Client, CLIENT, {Client.PRESENT}),
]
"""Each machine, its table and the states an exchange starts in."""

MOVES = [
    pytest.param(moves, old, new, id=f"{machine.__name__}.{old.name}->{new.name}")
    for machine, moves, _ in MACHINES
    for old, new in itertools.product(machine, repeat=2)
]


@pytest.mark.parametrize("machine, moves, initial", MACHINES, ids=lambda value: getattr(value, "__name__", ""))
def test_every_state_has_its_moves_listed_and_is_reachable(machine, moves, initial):
    assert set(moves) == set(machine)
    reached, frontier = set(initial), list(initial)
    while frontier:
        for new in moves[frontier.pop()]:
            if new not in reached:
                reached.add(new)
                frontier.append(new)
    assert reached == set(machine)


@pytest.mark.parametrize("moves, old, new", MOVES)
def test_a_listed_move_is_taken_and_any_other_raises_state_error(moves, old, new):
    if new in moves[old]:
        assert advance(moves, old, new) is new
    else:
        with pytest.raises(StateError, match=f"{type(old).__name__} cannot go from {old.name} to {new.name}"):
            advance(moves, old, new)


def test_progress_only_moves_forward():
    order = list(Progress)
    for old, targets in PROGRESS.items():
        assert all(order.index(new) >= order.index(old) for new in targets)


class FakeCarrier:
    """A connection that records what the exchange asks of it."""

    def __init__(self) -> None:
        self.aborted: list[str] = []
        self.early: list[Response] = []

    def abort(self, reason: str) -> None:
        self.aborted.append(reason)

    async def respond_early(self, exchange: Exchange, response: Response) -> None:
        self.early.append(response)


def head(raw: bytes) -> RequestHead:
    return parse_head(raw, Settings())


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
POST_CONTINUE = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"


def exchange(raw: bytes | None = GET, dispatch: Dispatch = Dispatch.LONE) -> tuple[Exchange, FakeCarrier]:
    carrier = FakeCarrier()
    return Exchange(carrier, None if raw is None else head(raw), 0.0, dispatch), carrier


def test_a_get_starts_awaited_without_body_or_continue():
    ex, _ = exchange()
    assert (ex.progress, ex.body, ex.continue_, ex.dispatch, ex.client) == (
        Progress.AWAITED,
        Body.ABSENT,
        Continue.NOT_EXPECTED,
        Dispatch.LONE,
        Client.PRESENT,
    )


def test_a_refused_head_has_no_body():
    ex, _ = exchange(None, Dispatch.QUEUED)
    assert ex.body is Body.ABSENT and ex.continue_ is Continue.NOT_EXPECTED


def test_a_post_expecting_continue_streams_its_body_and_expects():
    ex, _ = exchange(POST_CONTINUE)
    assert ex.body is Body.STREAMING and ex.continue_ is Continue.EXPECTED


def test_reading_the_body_wants_continue_once_and_only_when_expected():
    ex, _ = exchange(POST_CONTINUE)
    ex.want_continue()
    ex.want_continue()
    assert ex.continue_ is Continue.WANTED
    plain, _ = exchange(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
    plain.want_continue()
    assert plain.continue_ is Continue.NOT_EXPECTED


def test_a_response_given_after_it_was_sent_is_a_state_error():
    ex, _ = exchange()
    ex.set_response(Response(200))
    ex.progress = advance(PROGRESS, ex.progress, Progress.SENDING)
    ex.mark_done()
    assert ex.is_over
    with pytest.raises(StateError, match="Progress cannot go from SENT to GIVEN"):
        ex.set_response(Response(500))


def test_the_bodys_error_may_replace_a_given_response():
    ex, _ = exchange(POST_CONTINUE)
    ex.set_response(Response(200))
    ex.fail_body(ProtocolError(413, "too large"))
    ex.set_response(Response(413))
    assert ex.progress is Progress.GIVEN and ex.body is Body.FAILED and ex.is_over


def test_a_body_that_ended_cannot_fail():
    ex, _ = exchange(POST_CONTINUE)
    ex.end_body()
    with pytest.raises(StateError, match="Body cannot go from COMPLETE to FAILED"):
        ex.fail_body(ProtocolError(400, "late"))


async def test_responding_early_after_the_body_failed_raises_client_disconnected():
    ex, carrier = exchange(POST_CONTINUE)
    ex.fail_body(ProtocolError(400, "malformed chunk"))
    with pytest.raises(ClientDisconnected, match="answered 400"):
        await ex.respond_early(Response(200))
    assert carrier.early == []


async def test_responding_early_twice_is_refused():
    ex, carrier = exchange()
    await ex.respond_early(Response(200))
    ex.set_response(carrier.early[0])
    with pytest.raises(RuntimeError, match="already given"):
        await ex.respond_early(Response(200))


def test_a_client_leaving_a_watched_exchange_aborts_until_its_response_is_sent():
    ex, carrier = exchange()
    ex.abort_on_client_left()
    assert ex.client is Client.WATCHED and not ex.is_over
    ex.tell_client_left()
    assert ex.client is Client.LEFT and ex.is_over
    assert carrier.aborted == ["the client left in the middle of a streamed response"]


def test_watching_after_the_client_left_aborts_at_once():
    ex, carrier = exchange()
    ex.tell_client_left()
    ex.abort_on_client_left()
    assert ex.client is Client.LEFT and len(carrier.aborted) == 1


def test_a_client_leaving_an_unwatched_exchange_is_only_told():
    ex, carrier = exchange()
    ex.tell_client_left()
    ex.tell_client_left()
    assert ex.client is Client.LEFT and ex.is_over and carrier.aborted == []


def test_a_lone_exchange_can_be_queued_but_not_back():
    ex, _ = exchange()
    ex.dispatch = advance(DISPATCH, ex.dispatch, Dispatch.QUEUED)
    with pytest.raises(StateError):
        advance(DISPATCH, ex.dispatch, Dispatch.LONE)
