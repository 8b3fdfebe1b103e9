"""Fuzzing one HTTP/2 connection: the invariants of ``_fuzz_h2.py`` on random client frame
sequences (``HTTPCHANNEL_FUZZ_PROFILE=long``, ``scripts/fuzz``, for the long run)."""

from __future__ import annotations

import trio
import trio.testing
from _fuzz_h2 import H2Example, check_h2, exercise_h2, h2_examples
from _hypothesis_profiles import fuzz_settings
from hypothesis import given


@fuzz_settings()
@given(h2_examples())
def test_random_frame_sequences_keep_every_invariant(example: H2Example) -> None:
    """Pins the invariants listed in ``_fuzz_h2.py`` on random client frame sequences."""
    run = trio.run(exercise_h2, example, clock=trio.testing.MockClock(autojump_threshold=0))
    check_h2(example, run)
