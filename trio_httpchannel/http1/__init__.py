"""HTTP/1.1: the head grammar, the parser, the serializer, the connection's states, and the
channel that serves it (reader, writer, outbox, wire)."""

from .channel import HTTPChannel

__all__ = ["HTTPChannel"]
