"""HTTP/1.1: the head grammar, the parser, the serializer and the channel that serves it."""

__all__: list[str] = []
