"""HTTP/2 for trio-httpchannel, on h2: one connection as a nursery of a reader, a writer and a
task per stream, with the handlers, ``Request`` and ``Response`` of HTTP/1.1."""

from ._connection import Handler, HTTP2Connection, ResponseHook
from ._exchanges import Upgraded
from ._negotiation import ALPN_PROTOCOLS, PREFACE, Spoken, h2c_settings, opening, refusal_opening
from ._refusal import refuse_http2

__all__ = [
    "ALPN_PROTOCOLS",
    "HTTP2Connection",
    "Handler",
    "PREFACE",
    "ResponseHook",
    "Spoken",
    "Upgraded",
    "h2c_settings",
    "opening",
    "refusal_opening",
    "refuse_http2",
]
