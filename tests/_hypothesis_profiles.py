"""Hypothesis profiles of the fuzz tests, chosen by ``HTTPCHANNEL_FUZZ_PROFILE``.

``short`` (the default) is what ``scripts/test`` runs: a few hundred examples, seconds.
``long`` is what ``scripts/fuzz`` runs: at least 100,000 examples. ``HTTPCHANNEL_FUZZ_EXAMPLES``
overrides the number of examples of either. Profiles are applied per
test (``@fuzz_settings()``), never loaded globally, so other hypothesis tests keep theirs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

settings.register_profile("short", max_examples=300, **_COMMON)
settings.register_profile("long", max_examples=100_000, **_COMMON)


def fuzz_settings() -> settings:
    """The settings of the profile named by ``HTTPCHANNEL_FUZZ_PROFILE`` (default ``short``)."""
    profile = settings.get_profile(os.environ.get("HTTPCHANNEL_FUZZ_PROFILE", "short"))
    examples = os.environ.get("HTTPCHANNEL_FUZZ_EXAMPLES")
    return settings(profile, max_examples=int(examples)) if examples else profile
