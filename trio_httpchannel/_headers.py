"""Request headers: case-insensitive lookup over the fields as received, order and repeats kept."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

__all__ = ["Headers"]


class Headers:
    """The header fields of a request, read-only.

    Names compare case-insensitively; every field is kept, in the order received, repeats
    included. Values are ``str`` decoded as Latin-1, so any byte the client sent survives a
    round trip through ``.encode("latin-1")``; :attr:`raw` has the bytes themselves.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    @property
    def raw(self) -> Sequence[tuple[bytes, bytes]]:
        """The fields as ``(lower-cased name, value)`` byte pairs, in order."""
        return self._raw

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of the field ``name``, or ``default`` when it is absent."""
        key = name.lower().encode("latin-1")
        for field, value in self._raw:
            if field == key:
                return value.decode("latin-1")
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of the field ``name``, in the order received."""
        key = name.lower().encode("latin-1")
        return [value.decode("latin-1") for field, value in self._raw if field == key]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower().encode("latin-1")
        return any(field == key for field, _ in self._raw)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for field, value in self._raw:
            yield field.decode("latin-1"), value.decode("latin-1")

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"
