"""Fuzzing one WebSocket: the invariants of ``_fuzz_ws_run.py`` on the random client frame
streams of ``_fuzz_ws.py`` (``HTTPCHANNEL_FUZZ_PROFILE=long``, ``scripts/fuzz``, for the long
run)."""

from __future__ import annotations

import trio
import trio.testing
from _fuzz_ws import BINARY, PING, Example, Frame, Item, examples
from _fuzz_ws_run import check, check_run, exercise
from _hypothesis_profiles import fuzz_settings
from hypothesis import given


@fuzz_settings()
@given(examples())
def test_random_websocket_frame_streams_keep_every_invariant(example: Example) -> None:
    """Pins the invariants listed in ``_fuzz_ws_run.py`` on random client frame streams."""
    run = trio.run(exercise, example, clock=trio.testing.MockClock(autojump_threshold=0))
    check(example, run)


CLOSE_OVER_BEHIND_A_SLOW_READER = Example(
    http_before=0,
    offers_deflate=False,
    items=[
        Item(kind="ping", frames=(Frame(PING, b""),), pings=(b"",)),
        Item(kind="message", frames=(Frame(BINARY, b""),), data=b""),
    ],
    damage=[],
    splits=[],
    pauses=[0.0],
    finish="keep_open",
    transport="lockstep",
    read_sizes=[65536],
    read_pauses=[0.0, 0.0, 5.0],
    handler="closes",
    handler_delay=0.1,
    close_after=1,
    settings={
        "ws_max_size": 300,
        "ws_max_queue": 1,
        "ws_ping_interval": None,
        "ws_ping_timeout": None,
        "ws_per_message_deflate": False,
        "ws_close_timeout": 1.0,
        "send_timeout": 10.0,
        "linger_timeout": 1.0,
    },
)
"""Found by the long fuzz run: the closing handler's close frame and the pong wait behind the
echo for a client that reads 5 s late; the reader waits for them past ws_close_timeout."""


def test_a_close_handshake_that_ran_out_while_frames_waited_ends_without_an_error() -> None:
    """The reader, back from waiting for the writer, finds the close handshake's time over
    while the last frame is out: the stream is closed at once. It used to linger for the time
    left, which was negative (a ValueError, logged as an internal error) in about a third of the
    runs, as trio orders each batch of tasks at random: so twenty runs."""
    for _ in range(20):
        run = trio.run(exercise, CLOSE_OVER_BEHIND_A_SLOW_READER, clock=trio.testing.MockClock(autojump_threshold=0))
        check_run(CLOSE_OVER_BEHIND_A_SLOW_READER, run)
