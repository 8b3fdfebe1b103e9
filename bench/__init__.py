"""The benchmark of issue 6 (run it with scripts/bench): the apps every server serves, the
driver that measures them, and the in-process h11 ceiling."""
