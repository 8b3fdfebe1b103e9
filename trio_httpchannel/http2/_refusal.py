"""A connection refused in HTTP/2 (the server at its connection limit, say, to a client that
picked ``h2`` by ALPN, or that opened with the preface in cleartext): the refusal on the
client's first stream, then GOAWAY, so that the client reads the status it would read over
HTTP/1.1 instead of failing on HTTP/1.1 bytes."""

from __future__ import annotations

import h2.events
import h2.exceptions
import trio
from h2.config import H2Configuration
from h2.connection import H2Connection

from .._response import Response
from ._head import response_fields

__all__ = ["refuse_http2"]

_RECEIVE_SIZE = 65536


async def refuse_http2(
    stream: trio.abc.Stream, response: Response, linger: float, received: bytes = b""
) -> tuple[int, float]:
    """Answer ``response`` (a short ``bytes`` body) to the first request the client opens on
    ``stream`` (``received``: what was read of it already, the preface first in cleartext),
    then GOAWAY naming that stream the last one served (any other it opened may be retried
    elsewhere), then read until the client closes; all within ``linger`` seconds, then close.
    The bytes of the response's frames written (0 when the client sent no request or broke the
    protocol first: nothing is answered then), and the seconds from its request to the last of
    them, for its ``ResponseRecord``."""
    assert isinstance(response.body, bytes)
    engine = H2Connection(H2Configuration(client_side=False, header_encoding=None))
    engine.initiate_connection()
    sent, seconds = 0, 0.0
    with trio.move_on_after(linger):
        try:
            await stream.send_all(engine.data_to_send())
            request = await _first_request(stream, engine, received)
            if request is not None:
                started = trio.current_time()
                stream_id, method = request
                fields = response_fields(response, method)
                engine.send_headers(stream_id, fields.fields, end_stream=not fields.has_body)
                if fields.has_body:
                    engine.send_data(stream_id, response.body, end_stream=True)
                engine.close_connection(last_stream_id=stream_id)
                frames = engine.data_to_send()
                await stream.send_all(frames)
                sent, seconds = len(frames), trio.current_time() - started
                while await stream.receive_some(_RECEIVE_SIZE):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, h2.exceptions.H2Error):
            pass
    await trio.aclose_forcefully(stream)
    return sent, seconds


async def _first_request(stream: trio.abc.Stream, engine: H2Connection, received: bytes) -> tuple[int, str] | None:
    """The id and method of the first stream the client opens (``received`` first, then what
    it sends), ``None`` when it leaves first."""
    data = received or await stream.receive_some(_RECEIVE_SIZE)
    while data:
        events = engine.receive_data(data)
        await stream.send_all(engine.data_to_send())
        for event in events:
            if isinstance(event, h2.events.RequestReceived) and event.stream_id is not None:
                fields = dict(event.headers or ())
                return event.stream_id, bytes(fields.get(b":method", b"GET")).decode("latin-1")
        data = await stream.receive_some(_RECEIVE_SIZE)
    return None
