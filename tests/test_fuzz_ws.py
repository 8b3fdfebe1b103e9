"""Fuzzing one WebSocket: the invariants of ``_fuzz_ws_run.py`` on the random client frame
streams of ``_fuzz_ws.py`` (``HTTPCHANNEL_FUZZ_PROFILE=long``, ``scripts/fuzz``, for the long
run)."""

from __future__ import annotations

import trio
import trio.testing
from _fuzz_ws import Example, examples
from _fuzz_ws_run import check, exercise
from _hypothesis_profiles import fuzz_settings
from hypothesis import given


@fuzz_settings()
@given(examples())
def test_random_websocket_frame_streams_keep_every_invariant(example: Example) -> None:
    """Pins the invariants listed in ``_fuzz_ws_run.py`` on random client frame streams."""
    run = trio.run(exercise, example, clock=trio.testing.MockClock(autojump_threshold=0))
    check(example, run)
