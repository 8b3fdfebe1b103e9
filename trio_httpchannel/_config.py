"""The settings of a channel: every limit and timeout, named, documented and validated."""

from __future__ import annotations

import dataclasses
import math
from typing import TypedDict

__all__ = ["Settings", "SettingsKeywords"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Limits and timeouts of :class:`~trio_httpchannel.HTTPChannel`, for HTTP/1.1 and HTTP/2
    (the ``h2_`` fields are HTTP/2's own; the timeouts and ``max_header_length``,
    ``max_header_count`` and ``max_body_size`` hold for both).

    Every field is also a keyword argument of ``HTTPChannel``. Construction validates them, so a
    misconfigured server fails at start-up with a message naming the setting, not at the first
    request.
    """

    max_pipeline: int = 4
    """Requests of one connection in progress at once (the seed's maxPipeline). At the bound the
    channel stops reading the socket, so TCP pushes back on the client."""

    timeout: float = 75.0
    """Idle seconds before the first request and between requests before the connection is
    closed quietly (the seed's timeOut). 75 s outlasts the 60 s idle timeout of common load
    balancers (AWS ALB, GCP, nginx upstreams), so the proxy, not us, closes an idle connection:
    a server that closes first races the proxy's next request and the client sees a 502."""

    header_timeout: float = 20.0
    """Seconds within which a request line and all its headers must arrive, counted from the
    first byte of the request (slowloris bound). Exceeded: 408, then close. Over TLS it also
    bounds the handshake, counted from the connection: exceeded, the connection is closed."""

    body_timeout: float = 60.0
    """Longest gap in seconds between two reads of a request body that the handler is reading.
    Exceeded: 408, then close."""

    send_timeout: float = 60.0
    """Longest a write of a response may wait for the client to read it. A client that asks and
    never reads would otherwise hold its connection and handler forever. Exceeded: the
    connection is aborted (the response is already under way, so there is nothing to answer)."""

    linger_timeout: float = 20.0
    """Seconds to read and discard what a client still sends after our last response, before
    closing (the seed's lingeringClose; RFC 9112 section 9.6)."""

    max_header_length: int = 16384
    """Bytes of request line plus headers (the seed's maxHeaderLength), counted by us even when
    the whole head arrives in one read. Exceeded: 431."""

    max_request_line: int = 8192
    """Bytes of the request line (RFC 9112 section 3 asks for at least 8000). Exceeded: 414."""

    max_header_count: int = 100
    """Header fields in one request. Exceeded: 431."""

    max_body_size: int | None = None
    """Bytes of one request body; ``None`` means unlimited (bodies are streamed to the handler,
    so the server itself never holds one whole). Exceeded: 413, before reading a body whose
    Content-Length is too large, as soon as a chunked body passes it."""

    max_discard: int = 65536
    """Bytes of an unread request body the channel reads and throws away after the response so
    that the connection can be reused. A longer remainder closes the connection instead."""

    ws_max_size: int = 16 * 1024 * 1024
    """Bytes of one WebSocket message, counted over all its fragments and after permessage-deflate
    decompression (so a small compressed frame cannot inflate past it). Exceeded: close 1009."""

    ws_max_queue: int = 32
    """WebSocket messages received and waiting for the application. At the bound the connection
    stops reading the socket, so TCP pushes back on the client."""

    ws_ping_interval: float | None = 20.0
    """Seconds between the keepalive pings of an open WebSocket; ``None`` sends none. A ping keeps
    idle proxies and NAT entries from dropping the connection and finds dead peers."""

    ws_ping_timeout: float | None = 20.0
    """Seconds the pong answering a keepalive ping may take (not counted while the application
    leaves messages unread, since then the connection itself is not reading). Exceeded: close
    1011. ``None`` sends pings without waiting for their pongs."""

    ws_per_message_deflate: bool = True
    """Whether to accept a client's offer of permessage-deflate compression (RFC 7692)."""

    ws_close_timeout: float = 10.0
    """Seconds the WebSocket close handshake may take, from our close frame (or the client's) to
    the end of the connection: waiting for the client's close frame and then for it to close TCP.
    Then the connection is closed regardless."""
    h2: bool = True
    """Serve HTTP/2 as well: to a cleartext connection that opens with the HTTP/2 preface (prior
    knowledge), and over TLS when the client picks ``h2`` by ALPN. ``False``: HTTP/1.1 only (a
    preface is then answered 505, and TLS offers only ``http/1.1``)."""

    h2_max_concurrent_streams: int = 100
    """HTTP/2 streams of one connection in progress at once (the HTTP/1.1 ``max_pipeline``, per
    stream), advertised in SETTINGS. A stream over it is refused alone, with RST_STREAM
    (REFUSED_STREAM), which a client may retry; the other streams go on."""

    h2_max_header_list_size: int = 32768
    """Bytes of one HTTP/2 request's header list once HPACK-decoded, counted as RFC 9113 does
    (name + value + 32 a field), advertised as SETTINGS_MAX_HEADER_LIST_SIZE. Decoding stops as
    soon as it is passed (an HPACK bomb: a small block that inflates), and the connection gets
    GOAWAY (ENHANCE_YOUR_CALM). The default is above what an HTTP/1.1 head of
    ``max_header_length`` carries, since each field counts 32 bytes more here. The encoded block
    itself, across its CONTINUATION frames, is bounded by ``max_header_length``."""

    h2_initial_window_size: int = 65535
    """Bytes of request body an HTTP/2 client may send on one stream before the handler reads
    them (the stream's flow-control window, advertised in SETTINGS). The window is reopened only
    as the handler consumes the body, so a slow handler stalls its own stream and no other. The
    connection's window is this times ``h2_max_concurrent_streams``, so that streams never wait
    for one another: that product bounds the body bytes one connection may buffer. At least
    65535, the window a client may use before it has read our SETTINGS."""

    h2_max_resets_per_second: int = 100
    """HTTP/2 streams a client may reset (RST_STREAM), or have refused for going over
    ``h2_max_concurrent_streams``, per second, with a burst of as many (Rapid Reset,
    CVE-2023-44487: each such stream costs the server work and the client nothing). Exceeded:
    GOAWAY (ENHANCE_YOUR_CALM) and the connection closes."""

    h2_max_control_frames_per_second: int = 1000
    """HTTP/2 frames that do nothing for a request a client may send per second, with a burst of
    as many: SETTINGS, PING, PRIORITY, DATA that is empty and does not end its
    stream, CONTINUATION, frames of unknown types, and WINDOW_UPDATE beyond two for each DATA
    frame we send (a stream's and the connection's: those a client sends as it reads our
    responses are free). Floods of them (CVE-2019-9512, -9515, -9518) get GOAWAY
    (ENHANCE_YOUR_CALM) and the connection closes."""

    def __post_init__(self) -> None:
        _require_int("max_pipeline", self.max_pipeline, minimum=1)
        for name in ("timeout", "header_timeout", "body_timeout", "send_timeout", "linger_timeout"):
            _require_seconds(name, getattr(self, name))
        _require_int("max_header_length", self.max_header_length, minimum=64)
        _require_int("max_request_line", self.max_request_line, minimum=16)
        if self.max_request_line > self.max_header_length:
            raise ValueError(
                f"max_request_line ({self.max_request_line}) must not exceed "
                f"max_header_length ({self.max_header_length}): the request line is part of the head"
            )
        _require_int("max_header_count", self.max_header_count, minimum=1)
        if self.max_body_size is not None:
            _require_int("max_body_size", self.max_body_size, minimum=0)
        _require_int("max_discard", self.max_discard, minimum=0)
        _require_int("ws_max_size", self.ws_max_size, minimum=1)
        _require_int("ws_max_queue", self.ws_max_queue, minimum=1)
        for name in ("ws_ping_interval", "ws_ping_timeout"):
            if getattr(self, name) is not None:
                _require_seconds(name, getattr(self, name))
        if not isinstance(self.ws_per_message_deflate, bool):
            raise ValueError(f"ws_per_message_deflate must be True or False, got {self.ws_per_message_deflate!r}")
        _require_seconds("ws_close_timeout", self.ws_close_timeout)
        if not isinstance(self.h2, bool):
            raise ValueError(f"h2 must be True or False, got {self.h2!r}")
        _require_int("h2_max_concurrent_streams", self.h2_max_concurrent_streams, minimum=1, maximum=_MAX_SETTING)
        _require_int("h2_max_header_list_size", self.h2_max_header_list_size, minimum=1024, maximum=_MAX_SETTING)
        _require_int("h2_initial_window_size", self.h2_initial_window_size, minimum=65535, maximum=_MAX_WINDOW)
        _require_int("h2_max_resets_per_second", self.h2_max_resets_per_second, minimum=1)
        _require_int("h2_max_control_frames_per_second", self.h2_max_control_frames_per_second, minimum=1)


class SettingsKeywords(TypedDict, total=False):
    """The fields of :class:`Settings` as keyword arguments (``HTTPChannel(handler, **settings)``),
    so that a type checker checks each; ``tests/test_settings.py`` keeps the two in step."""

    max_pipeline: int
    timeout: float
    header_timeout: float
    body_timeout: float
    send_timeout: float
    linger_timeout: float
    max_header_length: int
    max_request_line: int
    max_header_count: int
    max_body_size: int | None
    max_discard: int
    ws_max_size: int
    ws_max_queue: int
    ws_ping_interval: float | None
    ws_ping_timeout: float | None
    ws_per_message_deflate: bool
    ws_close_timeout: float
    h2: bool
    h2_max_concurrent_streams: int
    h2_max_header_list_size: int
    h2_initial_window_size: int
    h2_max_resets_per_second: int
    h2_max_control_frames_per_second: int


_MAX_SETTING = 2**32 - 1
_MAX_WINDOW = 2**31 - 1


def _require_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")


def _require_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds (math.inf for none), got {value}")
