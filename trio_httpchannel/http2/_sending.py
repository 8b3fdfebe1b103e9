"""What the writer of an HTTP/2 connection sends, in order: h2's frames, and the response
bodies of the streams, shared fairly within the client's flow-control windows.

Handler tasks queue HEADERS with h2 (which only appends to its buffer) and hand their body to
their stream's ``outbox`` one chunk at a time; the writer alone turns those chunks into DATA
frames, one frame per stream in turn (round robin), and alone writes. A stream whose window is
shut waits in ``blocked`` until a WINDOW_UPDATE reopens it; its producer waits with it, so a
client that does not read slows only its own streams. END_STREAM is always on the last frame.
A WebSocket's stream (RFC 8441) is sent the same way, its frames handed over as its session
writes them (:meth:`Sender.open_tunnel`, :meth:`Sender.hand_over`, :meth:`Sender.end_body`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import trio
from h2.connection import H2Connection
from h2.errors import ErrorCodes

from .._file import FileBody
from .._response import HeaderPairs, Response, check_body_chunk, error_response, takes_trailers, trailer_fields
from ._guard import InboundGuard
from ._head import ResponseFields, informational_fields, response_fields
from ._stream import Phase, Stream

__all__ = ["Sender"]

logger = logging.getLogger("trio_httpchannel")

_WRITE_SIZE = 65536
"""Bytes of DATA gathered for one write: enough to keep the socket busy, small enough that
every stream with data gets a turn in each write."""
_FRAME_HEADER = 9
"""The bytes before every frame's payload (RFC 9113 §4.1), counted in a stream's ``sent``."""

Body = bytes | bytearray | memoryview


class Sender:
    """The connection's outgoing side: ``chunks`` of bytes in write order, and the streams with
    data ``ready`` to become DATA frames. ``open`` is cleared when the connection closes: h2
    then sends nothing more, and neither does this."""

    __slots__ = ("engine", "guard", "chunks", "size", "ready", "blocked", "finishing", "wake", "open", "_on_failure")

    def __init__(
        self, engine: H2Connection, guard: InboundGuard, on_failure: Callable[[Stream, ErrorCodes], None]
    ) -> None:
        self.engine = engine
        self.guard = guard
        self.chunks: list[bytes] = []
        self.size = 0
        self.ready: deque[Stream] = deque()
        self.blocked: set[Stream] = set()
        self.finishing: list[Stream] = []
        self.wake = trio.Event()
        self.open = True
        self._on_failure = on_failure

    def kick(self) -> None:
        """Take what h2 queued, and wake the writer."""
        self.collect()
        self.wake.set()

    def collect(self) -> None:
        data = self.engine.data_to_send()
        if data:
            self.chunks.append(data)
            self.size += len(data)

    def send_headers(self, stream: Stream, fields: list[tuple[bytes, bytes]], *, end_stream: bool = False) -> None:
        """Queue a HEADERS block on ``stream``, its bytes counted in ``stream.sent`` as the head
        of an HTTP/1.1 response is in its record's."""
        self.collect()
        self.engine.send_headers(stream.id, fields, end_stream=end_stream)
        before = self.size
        self.collect()
        stream.sent += self.size - before

    def put(self, data: bytes) -> None:
        """Queue ``data``, bytes that h2 did not make, after everything h2 queued."""
        self.collect()
        self.chunks.append(data)
        self.size += len(data)

    def take(self) -> tuple[bytes, list[Stream]]:
        """Everything queued, and the streams whose last frame is in it."""
        self.collect()
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.size = 0
        finishing, self.finishing = self.finishing, []
        return data, finishing

    # Responses ---------------------------------------------------------------------------------

    def inform(self, stream: Stream, status: int, headers: HeaderPairs) -> None:
        """Queue a 1xx response's HEADERS on ``stream``, unless its final response is given or
        it is over. Raises ``ValueError`` for a header that cannot be sent."""
        fields = informational_fields(status, headers)
        if stream.response is None and stream.phase is Phase.AWAITING and self.open:
            self.send_headers(stream, fields)
            self.kick()

    def give(self, stream: Stream, response: Response) -> None:
        """Queue ``response``, whose body is whole, at once."""
        prepared = self._prepare(stream, response)
        if prepared is not None:
            fields, response = prepared
            assert isinstance(response.body, (bytes, bytearray, memoryview))
            self._queue_whole(stream, fields, response.body)

    async def deliver(self, stream: Stream, response: Response) -> None:
        """Send ``response``: a whole body at once, a streamed one as it is produced, each
        chunk handed to the writer before the next is asked for."""
        body = response.body
        if isinstance(body, (bytes, bytearray, memoryview)):
            self.give(stream, response)
            return
        if isinstance(body, FileBody):
            try:
                body.open()
            except OSError as error:
                logger.error("the response file of %r cannot be sent: %s", stream.request, error)
                self.give(stream, error_response(500, "the server produced an invalid response"))
                return
        prepared = self._prepare(stream, response)
        if prepared is None:
            await _close_iterable(body)
            return
        fields, sent = prepared
        if sent is response and fields.has_body:
            try:
                await self._stream(stream, fields, response)
            finally:
                if isinstance(body, FileBody):
                    body.close()
            return
        await _close_iterable(body)
        whole = sent.body if sent is not response else b""  # the 500 that replaced it, or no body
        assert isinstance(whole, bytes)
        self._queue_whole(stream, fields, whole)

    def _prepare(self, stream: Stream, response: Response) -> tuple[ResponseFields, Response] | None:
        """The fields of ``response``, or of a 500 when the handler's cannot be sent, and the
        response sent; ``None`` when the stream or the connection is gone."""
        stream.response = response
        if stream.phase is Phase.CLOSED or not self.open:
            return None
        try:
            fields = response_fields(response, stream.method)
            stream.trailers = self._trailers(stream, response, fields)
        except ValueError as error:
            logger.error("the handler's response to %r cannot be sent: %s", stream.request, error)
            response = error_response(500, "the server produced an invalid response")
            fields = response_fields(response, stream.method)
        stream.status = response.status
        return fields, response

    @staticmethod
    def _trailers(stream: Stream, response: Response, fields: ResponseFields) -> list[tuple[bytes, bytes]] | None:
        """The trailers ``stream`` ends with: ``None`` when the response has none, or no body,
        or a file body (none, as over HTTP/1.1), or the client did not say it takes them (``te:
        trailers``); those of a whole body now, checked (``ValueError``); those of a streamed
        one once it ended (``_take_trailers``)."""
        request = stream.request
        if response.trailers is None or not fields.has_body or isinstance(response.body, FileBody):
            return None
        if request is None or not takes_trailers(request.headers.raw):
            return None
        if isinstance(response.body, (bytes, bytearray, memoryview)):
            return trailer_fields(response.trailers)
        return []

    def _queue_whole(self, stream: Stream, fields: ResponseFields, body: Body) -> None:
        send_body = fields.has_body and len(body) > 0
        self.send_headers(stream, fields.fields, end_stream=not send_body and not stream.trailers)
        stream.advance(Phase.ENDING)
        if not send_body and stream.trailers:
            self.send_headers(stream, stream.trailers, end_stream=True)
        if send_body:
            stream.outbox = memoryview(body)
            stream.out_end = True
            self.make_ready(stream)
        else:
            self.finishing.append(stream)
        self.kick()

    async def _stream(self, stream: Stream, fields: ResponseFields, response: Response) -> None:
        body = response.body
        assert not isinstance(body, (bytes, bytearray, memoryview))
        self.send_headers(stream, fields.fields, end_stream=False)
        stream.advance(Phase.STREAMING)
        self.kick()
        sent = 0
        try:
            async for data in body:
                check_body_chunk(data)
                if not data:
                    continue
                sent += len(data)
                if fields.length is not None and sent > fields.length:
                    raise ValueError(f"the response body is longer than its Content-Length {fields.length}")
                await self.hand_over(stream, data)
            if fields.length is not None and sent < fields.length:
                raise ValueError(f"the response body ended {fields.length - sent} bytes short of its Content-Length")
        except Exception:
            logger.exception("the response body of stream %d failed; the stream is reset", stream.id)
            self._on_failure(stream, ErrorCodes.INTERNAL_ERROR)
            return
        if (
            stream.phase is Phase.STREAMING
            and stream.trailers is not None
            and not self._take_trailers(stream, response)
        ):
            return
        self.end_body(stream)

    def open_tunnel(self, stream: Stream, fields: list[tuple[bytes, bytes]]) -> bool:
        """Queue the HEADERS accepting a WebSocket (``200``, no END_STREAM: its frames follow as
        DATA); whether the stream was still there to take them."""
        if stream.phase is not Phase.AWAITING or not self.open:
            return False
        stream.status = 200
        self.send_headers(stream, fields, end_stream=False)
        stream.advance(Phase.STREAMING)
        self.kick()
        return True

    def end_body(self, stream: Stream) -> None:
        """The body under way is complete: END_STREAM (on its trailers, if any) follows what is
        handed over."""
        if stream.phase is Phase.STREAMING:
            stream.advance(Phase.ENDING)
            stream.out_end = True
            self.make_ready(stream)
            self.kick()

    def _take_trailers(self, stream: Stream, response: Response) -> bool:
        """Check the trailers of ``response`` now that its body ended; a stream whose trailers
        cannot be sent is reset (its body went out without its end)."""
        try:
            stream.trailers = trailer_fields(response.trailers or ())
        except (ValueError, TypeError) as error:
            logger.error("the trailers of stream %d cannot be sent (%s); the stream is reset", stream.id, error)
            self._on_failure(stream, ErrorCodes.INTERNAL_ERROR)
            return False
        return True

    def _end(self, stream: Stream) -> None:
        """END_STREAM: on the trailers' HEADERS when there are trailers, else on an empty DATA."""
        if stream.trailers:
            self.send_headers(stream, stream.trailers, end_stream=True)
        else:
            self.engine.end_stream(stream.id)

    async def hand_over(self, stream: Stream, data: bytes) -> None:
        """Give the writer one chunk and wait until it has made frames of all of it (the
        stream's window allowing), or the stream is over."""
        if stream.phase is not Phase.STREAMING:
            await trio.lowlevel.checkpoint()  # the stream was reset: its scope is cancelled
            return
        drained = stream.drained = trio.Event()
        stream.outbox = memoryview(data)
        self.make_ready(stream)
        self.kick()
        await drained.wait()

    # The writer's side -------------------------------------------------------------------------

    def make_ready(self, stream: Stream) -> None:
        if stream not in self.blocked and stream not in self.ready:
            self.ready.append(stream)

    def window_opened(self, stream_id: int) -> None:
        """A WINDOW_UPDATE (or a new SETTINGS_INITIAL_WINDOW_SIZE when ``stream_id`` is 0):
        the streams it concerns may send again."""
        reopened = list(self.blocked) if stream_id == 0 else [s for s in self.blocked if s.id == stream_id]
        for stream in reopened:
            self.blocked.discard(stream)
            self.ready.append(stream)
        if reopened:
            self.wake.set()

    def fill(self, now: float) -> bool:
        """Turn ready streams' data into DATA frames, a frame per stream in turn, up to one
        write's worth; whether a stream became blocked (its send_timeout then runs)."""
        budget = _WRITE_SIZE
        frames = 0
        newly_blocked = False
        engine = self.engine
        ready = self.ready
        while ready and budget > 0 and self.open:
            stream = ready.popleft()
            if stream.phase is Phase.CLOSED:
                continue
            pending = stream.outbox
            if pending is None:
                if stream.out_end:
                    self._end(stream)
                    self.finishing.append(stream)
                continue
            window = engine.local_flow_control_window(stream.id)
            if window <= 0:
                self.blocked.add(stream)
                if stream.blocked_since is None:
                    stream.blocked_since = now
                    newly_blocked = True
                continue
            size = min(len(pending), window, engine.max_outbound_frame_size, budget)
            last = size == len(pending)
            end_stream = last and stream.out_end and not stream.trailers
            engine.send_data(stream.id, bytes(pending[:size]), end_stream=end_stream)
            frames += 1
            budget -= size
            stream.sent += size + _FRAME_HEADER
            stream.blocked_since = None
            if not last:
                stream.outbox = pending[size:]
                ready.append(stream)
                continue
            stream.outbox = None
            if stream.out_end:
                if stream.trailers:
                    self.send_headers(stream, stream.trailers, end_stream=True)
                self.finishing.append(stream)
            elif stream.drained is not None:
                stream.drained.set()
        if frames:
            self.guard.data_frames_sent(frames)
        return newly_blocked


async def _close_iterable(body: object) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()
