"""The value types of the command line's options that argparse does not have: each parses one
option's text (from the command line or its environment variable) or says what it expected."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["FALSE", "TRUE", "PathList", "integer", "on_off", "optional_seconds", "seconds"]

TRUE = frozenset({"1", "true", "yes", "on"})
"""What a switch's variable or an on/off option takes for true; ``FALSE`` for false."""
FALSE = frozenset({"0", "false", "no", "off", ""})
_NONE = frozenset({"none", "off"})


def integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer from ``minimum`` to ``maximum`` (if any)."""
    wanted = f"an integer from {minimum} to {maximum}" if maximum is not None else f"an integer of at least {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


def optional_seconds(text: str) -> float | None:
    """An argparse ``type``: a number of seconds, or ``none``/``off`` for ``None`` (not at all)."""
    if text.strip().lower() in _NONE:
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, or none or off, got {text!r}") from None


def on_off(text: str) -> bool:
    """An argparse ``type``: on or off (also true/false, yes/no, 1/0), as a switch's variable."""
    lowered = text.strip().lower()
    if lowered not in TRUE | FALSE or not lowered:
        raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")
    return lowered in TRUE


def seconds(text: str) -> float:
    """An argparse ``type``: a number of seconds, zero or more (``inf`` for no limit)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


class PathList(argparse.Action):
    """Like ``action="extend"`` with each value split at ``os.pathsep`` (as a variable holds
    several), except that the command line's paths replace the environment's, not add to them."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        assert isinstance(values, str)
        earlier = getattr(namespace, self.dest)
        paths = [] if earlier is self.default else list(earlier)
        paths += [path for path in values.split(os.pathsep) if path]
        setattr(namespace, self.dest, paths)
