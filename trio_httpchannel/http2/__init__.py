"""HTTP/2 for trio-httpchannel, on h2: one connection as a nursery of a reader, a writer and a
task per stream, with the handlers, ``Request`` and ``Response`` of HTTP/1.1."""

from ._connection import Handler, HTTP2Connection, ResponseHook
from ._negotiation import ALPN_PROTOCOLS, PREFACE, opening
from ._serve import serve_http2

__all__ = ["ALPN_PROTOCOLS", "PREFACE", "HTTP2Connection", "Handler", "ResponseHook", "opening", "serve_http2"]
