"""HTTP/1.1: the head grammar, the parser, the serializer, the connection's states, and the
connection that serves it (reader, writer, outbox, wire)."""

from .connection import Handoff, HTTP1Connection, refuse

__all__ = ["HTTP1Connection", "Handoff", "refuse"]
