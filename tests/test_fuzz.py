"""Fuzzing one connection served by a native handler: the invariants of ``_fuzz.py`` on random
request streams (``HTTPCHANNEL_FUZZ_PROFILE=long``, ``scripts/fuzz``, for the long run)."""

from __future__ import annotations

import trio
import trio.testing
from _fuzz import Example, examples
from _fuzz_checks import check
from _fuzz_run import exercise
from _hypothesis_profiles import fuzz_settings
from hypothesis import given


@fuzz_settings()
@given(examples())
def test_random_request_streams_keep_every_invariant(example: Example) -> None:
    """Pins the invariants listed in ``_fuzz.py`` on random request streams."""
    run = trio.run(exercise, example, clock=trio.testing.MockClock(autojump_threshold=0))
    check(example, run)
