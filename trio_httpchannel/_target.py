"""A request-target's parts, as a handler sees them whatever the protocol: its path and query
(RFC 9112 section 3.2; an HTTP/2 ``:path`` has the same forms but the absolute one)."""

from __future__ import annotations

import re

__all__ = ["ABSOLUTE_FORM", "split_target"]

ABSOLUTE_FORM = re.compile(r"([A-Za-z][-A-Za-z0-9+.]*)://([^/?]*)([^?]*)\??(.*)", re.DOTALL)
"""An absolute-form target: scheme, authority, path, query."""


def split_target(target: str) -> tuple[str, str]:
    """The path and the query of a request-target, split at the first ``?``, not
    percent-decoded. An absolute-form target's path is what follows its authority, ``/`` when
    that is empty (RFC 9112 section 3.2.2); other targets are split as they are."""
    if target[:1] != "/":
        match = ABSOLUTE_FORM.fullmatch(target)
        if match is not None:
            return match.group(3) or "/", match.group(4)
    path, _, query = target.partition("?")
    return path, query
