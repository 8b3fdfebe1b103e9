"""A connection refused in HTTP/2 (the server at its connection limit, say, to a client that
picked ``h2`` by ALPN): the refusal on the client's first stream, then GOAWAY, so that the
client reads the status it would read over HTTP/1.1 instead of failing on HTTP/1.1 bytes."""

from __future__ import annotations

import h2.events
import h2.exceptions
import trio
from h2.config import H2Configuration
from h2.connection import H2Connection

from .._response import Response

__all__ = ["refuse_http2"]

_RECEIVE_SIZE = 65536
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"})


async def refuse_http2(stream: trio.abc.Stream, response: Response, linger: float) -> tuple[int, float]:
    """Answer ``response`` (a short ``bytes`` body) to the first request the client opens on
    ``stream``, then GOAWAY naming that stream the last one served (any other it opened may be
    retried elsewhere), then read until the client closes; all within ``linger`` seconds, then
    close. The bytes of the response's frames written (0 when the client sent no request or
    broke the protocol first: nothing is answered then), and the seconds from its request to
    the last of them, for its ``ResponseRecord``."""
    assert isinstance(response.body, bytes)
    engine = H2Connection(H2Configuration(client_side=False, header_encoding=None))
    engine.initiate_connection()
    sent, seconds = 0, 0.0
    with trio.move_on_after(linger):
        try:
            await stream.send_all(engine.data_to_send())
            stream_id = await _first_request(stream, engine)
            if stream_id is not None:
                started = trio.current_time()
                engine.send_headers(stream_id, _fields(response))
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


async def _first_request(stream: trio.abc.Stream, engine: H2Connection) -> int | None:
    """The id of the first stream the client opens, ``None`` when it leaves first."""
    while data := await stream.receive_some(_RECEIVE_SIZE):
        events = engine.receive_data(data)
        await stream.send_all(engine.data_to_send())
        for event in events:
            if isinstance(event, h2.events.RequestReceived) and event.stream_id is not None:
                return event.stream_id
    return None


def _fields(response: Response) -> list[tuple[bytes, bytes]]:
    fields = [(b":status", str(response.status).encode())]
    for name, value in response.headers:
        name = (name.encode("latin-1") if isinstance(name, str) else name).lower()
        if name not in _HOP_BY_HOP:
            fields.append((name, value.encode("latin-1") if isinstance(value, str) else value))
    assert isinstance(response.body, bytes)
    fields.append((b"content-length", str(len(response.body)).encode()))
    return fields
