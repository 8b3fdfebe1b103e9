"""An HTTP/1.1 connection's machines and rules (``http1/state.py``), without streams: the
reader's and the writer's moves, how a connection ends, the order of handlers (RFC 9112 section
9.3.2) and persistence (section 9.3)."""

from __future__ import annotations

import itertools

import pytest

from trio_httpchannel import Settings
from trio_httpchannel._state import Body, Continue, StateError, advance
from trio_httpchannel.http1.head import RequestHead, parse_head
from trio_httpchannel.http1.state import READ, WRITE, Ending, Read, Write, ending, may_persist, waits_for_earlier


def reachable(moves, start):
    reached, frontier = {start}, [start]
    while frontier:
        for new in moves[frontier.pop()]:
            if new not in reached:
                reached.add(new)
                frontier.append(new)
    return reached


@pytest.mark.parametrize("machine, moves, start", [(Read, READ, Read.FIRST), (Write, WRITE, Write.OPEN)])
def test_every_state_has_its_moves_listed_and_is_reachable(machine, moves, start):
    assert set(moves) == set(machine)
    assert reachable(moves, start) == set(machine)


@pytest.mark.parametrize(
    "moves, old, new",
    [(READ, old, new) for old, new in itertools.product(Read, repeat=2)]
    + [(WRITE, old, new) for old, new in itertools.product(Write, repeat=2)],
    ids=lambda value: getattr(value, "name", ""),
)
def test_a_listed_move_is_taken_and_any_other_raises_state_error(moves, old, new):
    if new in moves[old]:
        assert advance(moves, old, new) is new
    else:
        with pytest.raises(StateError, match=f"cannot go from {old.name} to {new.name}"):
            advance(moves, old, new)


def test_a_keep_alive_connection_reads_head_then_idle_again():
    read = Read.FIRST
    for new in (Read.HEAD, Read.IDLE, Read.HEAD, Read.BODY, Read.IDLE, Read.DONE, Read.EOF):
        read = advance(READ, read, new)
    assert read is Read.EOF


def test_the_reader_never_reads_a_request_again_once_done():
    for new in (Read.FIRST, Read.IDLE, Read.HEAD, Read.BODY):
        with pytest.raises(StateError):
            advance(READ, Read.DONE, new)


def test_nothing_follows_an_abort():
    assert WRITE[Write.ABORTED] == frozenset()
    assert all(Write.ABORTED in WRITE[state] for state in Write if state is not Write.ABORTED)


# How a connection ends --------------------------------------------------------------------------


@pytest.mark.parametrize("read", list(Read))
@pytest.mark.parametrize("upgrading", [False, True])
def test_an_aborted_connection_just_closes(read, upgrading):
    assert ending(Write.ABORTED, read, upgrading) is Ending.CLOSE


@pytest.mark.parametrize("write", [Write.OPEN, Write.CLOSING])
def test_a_writer_that_never_returned_was_stopped_by_send_timeout_and_aborts(write):
    assert ending(write, Read.DONE, False) is Ending.ABORT


def test_after_a_closing_response_the_connection_lingers_unless_the_client_left():
    assert ending(Write.CLOSED, Read.DONE, False) is Ending.LINGER
    assert ending(Write.CLOSED, Read.EOF, False) is Ending.CLOSE


def test_a_closing_response_before_an_upgrade_request_cancels_the_upgrade():
    assert ending(Write.CLOSED, Read.DONE, True) is Ending.LINGER


def test_a_finished_writer_upgrades_only_when_the_reader_stopped_at_an_upgrade():
    assert ending(Write.FINISHED, Read.DONE, True) is Ending.UPGRADE
    assert ending(Write.FINISHED, Read.DONE, False) is Ending.CLOSE
    assert ending(Write.FINISHED, Read.EOF, False) is Ending.CLOSE


# The order of handlers (RFC 9112 section 9.3.2) ------------------------------------------------


def head(raw: bytes) -> RequestHead:
    return parse_head(raw, Settings())


GET = head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
HEAD = head(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
POST = head(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n")
GET_1_0 = head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")


def test_safe_requests_after_safe_ones_run_at_once():
    assert not waits_for_earlier(GET, GET)
    assert not waits_for_earlier(HEAD, GET)


def test_an_unsafe_request_waits_for_the_responses_before_it():
    assert waits_for_earlier(POST, GET)


def test_a_request_after_an_unsafe_one_waits_for_it():
    assert waits_for_earlier(GET, POST)


def test_a_request_after_an_http_1_0_one_waits_for_it():
    assert waits_for_earlier(GET, GET_1_0)


def test_a_request_after_an_unparsed_one_waits():
    assert waits_for_earlier(GET, None)


# Persistence (RFC 9112 section 9.3) -------------------------------------------------------------


def persists(
    keep_alive=True,
    body=Body.ABSENT,
    continue_=Continue.NOT_EXPECTED,
    read=Read.IDLE,
    shutting_down=False,
    in_flight=1,
    unread: int | None = 0,
    max_discard=10,
):
    return may_persist(keep_alive, body, continue_, read, shutting_down, in_flight, unread, max_discard)


def test_a_request_without_a_body_persists():
    assert persists()


def test_a_request_asking_to_close_closes():
    assert not persists(keep_alive=False)


def test_a_failed_body_closes_whatever_remains():
    assert not persists(body=Body.FAILED, unread=0)


@pytest.mark.parametrize("read", [Read.DONE, Read.EOF])
def test_the_last_response_in_flight_closes_when_no_request_follows(read):
    assert not persists(read=read)
    assert persists(read=read, in_flight=2)


def test_the_last_response_in_flight_closes_in_a_shutdown():
    assert not persists(shutting_down=True)
    assert persists(shutting_down=True, in_flight=2)


def test_a_body_read_whole_persists():
    assert persists(body=Body.COMPLETE, unread=None)


@pytest.mark.parametrize("continue_", [Continue.EXPECTED, Continue.WANTED])
def test_a_client_still_waiting_for_100_continue_is_closed(continue_):
    assert not persists(body=Body.STREAMING, continue_=continue_, unread=1)


def test_an_unread_rest_within_max_discard_is_thrown_away_and_persists():
    assert persists(body=Body.STREAMING, unread=10)
    assert persists(body=Body.STREAMING, continue_=Continue.WRITTEN, unread=10)
    assert not persists(body=Body.STREAMING, unread=11)


def test_an_unread_chunked_body_closes():
    assert not persists(body=Body.STREAMING, unread=None)
