"""HTTP2Connection: one HTTP/2 connection as a nursery of a reader, a writer and handler tasks.

The reader feeds the client's bytes to the guard, then to h2, and turns h2's events into
streams, each answered by a handler task of its own, at most ``h2_max_concurrent_streams`` at
once. The writer alone writes: h2's frames, and the response bodies of every stream with data,
a frame each in turn, as the client's flow-control windows allow. Every timer is a deadline
on the reader's cancel scope. See ``docs/design.md``.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Awaitable, Callable

import h2.events
import h2.exceptions
import trio
from h2.errors import ErrorCodes

from .._addresses import addresses
from .._config import Settings
from .._errors import ProtocolError
from .._headers import Headers
from .._request import Request, RequestBody
from .._response import Response, error_response
from ._engine import goaway, new_engine
from ._guard import Abuse, InboundGuard
from ._head import MalformedRequest, parse_request_head
from ._sending import Sender
from ._stream import Phase, Stream

__all__ = ["HTTP2Connection", "Handler", "ResponseHook"]

Handler = Callable[[Request], Awaitable[Response]]
ResponseHook = Callable[["Request | None", int, int, float], None]

logger = logging.getLogger("trio_httpchannel")

_RECEIVE_SIZE = 65536
_OUTBOX_LIMIT = 65536
_LINGER_READ = 65536


class State(enum.Enum):
    """Where the connection is."""

    OPEN = "taking new streams"
    DRAINING = "a graceful GOAWAY is sent: the streams below it finish, new ones are refused"
    CLOSING = "the last GOAWAY is queued: the writer sends what is left, then the connection closes"
    ABORTED = "the client is gone, or did not read: close at once"


_NEXT = {
    State.OPEN: frozenset({State.DRAINING, State.CLOSING, State.ABORTED}),
    State.DRAINING: frozenset({State.CLOSING, State.ABORTED}),
    State.CLOSING: frozenset({State.ABORTED}),
    State.ABORTED: frozenset(),
}


class HTTP2Connection:
    """Serves HTTP/2 on one ``trio.abc.Stream``: :meth:`run` until the connection ends.

    ``handler``, ``settings`` and ``on_response`` mean what they mean for ``HTTPChannel``; a
    handler sees ``request.http_version == "2"``. Nothing a client does makes :meth:`run`
    raise: a malformed stream is reset, a client breaking the protocol or a bound gets GOAWAY.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        handler: Handler,
        settings: Settings,
        *,
        on_response: ResponseHook | None = None,
        upgrade_settings: bytes | None = None,
    ) -> None:
        self._settings = settings
        self._transport = stream
        self._handler = handler
        self._on_response = on_response
        self._scheme, self._client, self._server = addresses(stream)
        self._state = State.OPEN
        self._engine = new_engine(settings, upgrade_settings=upgrade_settings)
        self._idle_since = trio.current_time()
        self._guard = InboundGuard(settings, self._idle_since, preface=upgrade_settings is None)
        self._sender = Sender(self._engine, self._guard, self._reset)
        self._read_scope: trio.CancelScope | None = None
        self._reader_scope = trio.CancelScope()
        self._written: trio.Event | None = None
        self._last_stream_id = 0
        self._handlers_running = 0
        self._handlers_done: trio.Event | None = None
        self._streams: dict[int, Stream] = {}
        self._nursery: trio.Nursery

    async def run(self, received: bytes = b"") -> None:
        """Serve until the connection ends, then close the stream. ``received`` are bytes
        already read from it (the preface, say) that h2 must see first."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._read, received)
                await self._write()
                if self._state is State.CLOSING:
                    await self._finish_handlers()
                nursery.cancel_scope.cancel()
            if self._state is State.CLOSING:
                await self._linger()
        except Exception:
            logger.exception("internal error while serving HTTP/2 to %s; the connection is closed", self._peer())
        finally:
            await trio.aclose_forcefully(self._transport)

    def shutdown(self) -> None:
        """Stop taking new streams: GOAWAY names the last stream served, the streams up to it
        finish, then the connection closes (at once when idle)."""
        if self._state is not State.OPEN:
            return
        self._advance(State.DRAINING)
        self._last_stream_id = self._engine.highest_inbound_stream_id
        self._sender.put(goaway(self._last_stream_id))
        self._sender.kick()
        self._retime()

    def _advance(self, state: State) -> None:
        if state not in _NEXT[self._state]:
            raise RuntimeError(f"the connection cannot go from {self._state.name} to {state.name}")
        self._state = state

    def _sending(self) -> bool:
        return self._state is State.OPEN or self._state is State.DRAINING

    def _close(self, error_code: ErrorCodes, reason: str) -> None:
        """End with GOAWAY (``error_code``): the writer sends what is queued, then returns."""
        if not self._sending():
            return
        level = logging.DEBUG
        logger.log(level, "closing the HTTP/2 connection of %s: %s", self._peer(), reason)
        last = self._last_stream_id if self._state is State.DRAINING else None
        for stream in list(self._streams.values()):
            self._forget(stream)
        self._advance(State.CLOSING)
        self._engine.close_connection(error_code, last_stream_id=last)
        self._sender.open = False
        self._reader_scope.cancel()
        self._sender.kick()

    def _abort(self, reason: str) -> None:
        if self._state is State.ABORTED:
            return
        logger.debug("aborting the HTTP/2 connection of %s: %s", self._peer(), reason)
        self._advance(State.ABORTED)
        self._sender.open = False
        self._nursery.cancel_scope.cancel()

    async def _finish_handlers(self) -> None:
        """Handlers still running after their response (an ASGI app's background tasks) finish
        before the connection closes, as over HTTP/1.1."""
        if self._handlers_running:
            self._handlers_done = trio.Event()
            await self._handlers_done.wait()

    # The reader task ---------------------------------------------------------------------------

    async def _read(self, received: bytes) -> None:
        with self._reader_scope:
            try:
                if received:
                    self._receive(received)
                while self._sending():
                    data = await self._receive_some()
                    if data is None:
                        continue
                    if not data:
                        self._abort("the client closed the connection")
                        return
                    self._receive(data)
                    await self._hold_while_backlogged()
            except Abuse as abuse:
                self._close(abuse.error_code, abuse.message)
            except h2.exceptions.ProtocolError as error:
                self._broken(error)

    def _broken(self, error: h2.exceptions.ProtocolError) -> None:
        """h2 found a connection error and queued its GOAWAY."""
        logger.debug("HTTP/2 protocol error from %s: %s", self._peer(), error)
        if self._sending():
            for stream in list(self._streams.values()):
                self._forget(stream)
            self._advance(State.CLOSING)
            self._sender.open = False
        self._reader_scope.cancel()
        self._sender.kick()

    async def _receive_some(self) -> bytes | bytearray | None:
        """The next bytes (``b""`` when the client is gone), or ``None`` when a timer fired."""
        with trio.CancelScope(deadline=self._deadline()) as scope:
            self._read_scope = scope
            try:
                return await self._transport.receive_some(_RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return b""
            finally:
                self._read_scope = None
        self._timer_fired()
        return None

    def _deadline(self) -> float:
        """The nearest of the timers that apply now: the header block in progress
        (header_timeout), idleness (timeout), a stream the client's window holds (send_timeout)."""
        settings = self._settings
        deadline = math.inf
        if self._guard.block_opened is not None:
            deadline = self._guard.block_opened + settings.header_timeout
        if not self._streams and self._state is State.OPEN:
            deadline = min(deadline, self._idle_since + settings.timeout)
        for stream in self._sender.blocked:
            if stream.blocked_since is not None:
                deadline = min(deadline, stream.blocked_since + settings.send_timeout)
        return deadline

    def _retime(self) -> None:
        """A timer's start moved: the read in progress waits until the new deadline."""
        if self._read_scope is not None:
            self._read_scope.deadline = self._deadline()

    def _timer_fired(self) -> None:
        now = trio.current_time()
        settings = self._settings
        opened = self._guard.block_opened
        if opened is not None and now >= opened + settings.header_timeout:
            self._close(ErrorCodes.ENHANCE_YOUR_CALM, "a header block did not complete within header_timeout")
            return
        if not self._streams and self._state is State.OPEN and now >= self._idle_since + settings.timeout:
            self._close(ErrorCodes.NO_ERROR, "idle for longer than timeout")
            return
        stalled = [s for s in self._sender.blocked if s.blocked_since is not None and s.blocked_since + settings.send_timeout <= now]
        for stream in stalled:
            logger.debug("stream %d of %s: the client's window stayed shut for send_timeout", stream.id, self._peer())
            self._reset(stream, ErrorCodes.CANCEL)

    def _receive(self, data: bytes | bytearray) -> None:
        self._guard.feed(data, trio.current_time())
        for event in self._engine.receive_data(data):
            self._on_event(event)
        self._sender.kick()

    async def _hold_while_backlogged(self) -> None:
        """Read no more while much of what h2 answered (PING and SETTINGS acknowledgements,
        resets) waits behind a write the client is slow to take."""
        while self._sender.size > _OUTBOX_LIMIT and self._sending():
            self._written = trio.Event()
            await self._written.wait()

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            self._on_data(event)
        elif isinstance(event, h2.events.RequestReceived):
            self._on_request(event)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.end_body()
        elif isinstance(event, h2.events.WindowUpdated):
            self._sender.window_opened(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            stream = self._streams.get(event.stream_id)
            if stream is not None and event.remote_reset:
                self._forget(stream)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._sender.window_opened(0)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._broken(h2.exceptions.ProtocolError(f"the client sent GOAWAY ({event.error_code!r})"))

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream = self._streams.get(event.stream_id)
        flow = event.flow_controlled_length or 0
        data = event.data or b""
        if stream is None or stream.body_error is not None or stream.phase is Phase.CLOSED:
            self._acknowledge(event.stream_id, flow)
            return
        stream.received += len(data)
        limit = self._settings.max_body_size
        if limit is not None and stream.received > limit:
            self._acknowledge(event.stream_id, flow + stream.take_unread())
            stream.fail_body(ProtocolError(413, f"the request body is larger than max_body_size ({limit} bytes)"))
            return
        stream.put_body(data, flow)

    def _acknowledge(self, stream_id: int, flow: int) -> None:
        if flow and self._sending():
            self._engine.acknowledge_received_data(flow, stream_id)
            self._sender.kick()

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        assert event.stream_id is not None
        stream_id = event.stream_id
        if self._state is not State.OPEN or len(self._streams) >= self._settings.h2_max_concurrent_streams:
            self._guard.stream_refused(trio.current_time())
            self._engine.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        try:
            head = parse_request_head(event.headers or (), max_header_count=self._settings.max_header_count)
        except MalformedRequest as error:
            logger.debug("malformed request on stream %d from %s: %s", stream_id, self._peer(), error)
            self._guard.stream_refused(trio.current_time())
            self._engine.reset_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
            return
        except ProtocolError as error:
            stream = self._open(stream_id, "GET", event.stream_ended is not None)
            self._sender.give(stream, error_response(error.status, error.message))
            return
        stream = self._open(stream_id, head.method, event.stream_ended is not None)
        stream.request = self._request(stream, head.method, head.target, head.fields)
        if stream.request_ended is False:
            _check_declared_length(stream, head.fields, self._settings.max_body_size)
        self._handlers_running += 1
        self._nursery.start_soon(self._respond, stream)

    def _open(self, stream_id: int, method: str, ended: bool) -> Stream:
        stream = Stream(self, stream_id, method, ended)
        if self._on_response is not None:
            stream.started = trio.current_time()
        self._streams[stream_id] = stream
        return stream

    def _request(self, stream: Stream, method: str, target: str, fields: list[tuple[bytes, bytes]]) -> Request:
        body: RequestBody
        if stream.request_ended:
            body = RequestBody(None)
        else:
            send, receive = trio.open_memory_channel[bytes](0)
            body = RequestBody(receive, lambda: self._nursery.start_soon(self._pump_body, stream, send))
        request = Request(
            method,
            target,
            "2",
            Headers(fields),
            body,
            scheme=self._scheme,
            client=self._client,
            server=self._server,
            nursery=self._nursery,
        )
        request._exchange = stream
        return request

    async def _pump_body(self, stream: Stream, send: trio.MemorySendChannel[bytes]) -> None:
        """Hand the body to the handler chunk by chunk, reopening the window for each chunk
        only once the handler took it: the client sends as fast as the handler reads."""
        assert stream.request is not None
        with send:
            while True:
                try:
                    chunk = await stream.next_chunk(self._settings.body_timeout)
                except ProtocolError as error:
                    logger.debug("bad request body on stream %d from %s: %s", stream.id, self._peer(), error.message)
                    stream.request.body._fail(error)
                    return
                if chunk is None:
                    return
                data, flow = chunk
                if data:
                    try:
                        await send.send(data)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        self._acknowledge(stream.id, flow + stream.take_unread())
                        return
                self._acknowledge(stream.id, flow)

    # Handler tasks -----------------------------------------------------------------------------

    async def _respond(self, stream: Stream) -> None:
        try:
            with trio.CancelScope() as scope:
                stream.scopes.append(scope)
                if stream.phase is Phase.CLOSED:
                    scope.cancel()
                response = await self._call_handler(stream)
                if stream.response is None:
                    await self._sender.deliver(stream, response)
        finally:
            self._handlers_running -= 1
            if self._handlers_running == 0 and self._handlers_done is not None:
                self._handlers_done.set()

    async def _call_handler(self, stream: Stream) -> Response:
        assert stream.request is not None
        try:
            response = await self._handler(stream.request)
            if not isinstance(response, Response):
                raise TypeError(f"the handler returned {response!r}, not a Response")
        except ProtocolError as error:
            return error_response(error.status, error.message)
        except Exception:
            logger.exception("the handler failed on %r from %s", stream.request, self._peer())
            return error_response(500, "the server failed to produce a response")
        return response

    async def respond_early(self, stream: Stream, response: Response) -> None:
        """Give ``response`` before the handler returns. A whole body is queued at once; a
        stream is sent by a task of its own, since the handler's task is producing it."""
        if stream.response is not None:
            raise RuntimeError("the response to this request was already given")
        if isinstance(response.body, (bytes, bytearray, memoryview)):
            self._sender.give(stream, response)
            await trio.lowlevel.checkpoint()
            return
        stream.response = response
        self._nursery.start_soon(self._send_in_own_task, stream, response)

    async def _send_in_own_task(self, stream: Stream, response: Response) -> None:
        with trio.CancelScope() as scope:
            stream.scopes.append(scope)
            if stream.phase is Phase.CLOSED:
                scope.cancel()
            await self._sender.deliver(stream, response)

    # The writer (runs in the connection's own task) --------------------------------------------

    async def _write(self) -> None:
        """Send h2's frames and the streams' data until the connection closes."""
        sender = self._sender
        while True:
            sender.wake = trio.Event()
            if sender.fill(trio.current_time()):
                self._retime()
            sender.collect()
            if sender.chunks:
                if not await self._flush():
                    return
                continue
            if self._state is State.CLOSING or self._state is State.ABORTED:
                return
            if self._state is State.DRAINING and not self._streams:
                self._close(ErrorCodes.NO_ERROR, "shutting down, every stream done")
                continue
            await sender.wake.wait()

    async def _flush(self) -> bool:
        """Write what is queued. The streams whose last frame it carries are done from now:
        the client may open new streams as soon as it reads those frames, which can be before
        this task runs again. A client that does not take the write within send_timeout has
        its connection aborted."""
        data, finishing = self._sender.take()
        for stream in finishing:
            self._stream_written(stream)
        with trio.move_on_after(self._settings.send_timeout) as scope:
            try:
                await self._transport.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, OSError) as error:
                self._abort(f"writing failed: {error!r}")
                return False
        if scope.cancelled_caught:
            self._abort("the client did not read for send_timeout")
            return False
        if self._written is not None:
            self._written.set()
            self._written = None
        return True

    def _stream_written(self, stream: Stream) -> None:
        """The last frame of ``stream``'s response is written: the stream is over. A request
        body still coming is stopped with RST_STREAM (NO_ERROR), RFC 9113 section 8.1."""
        if stream.phase is Phase.CLOSED:
            return
        if not stream.request_ended and self._sending():
            self._engine.reset_stream(stream.id, ErrorCodes.NO_ERROR)
        self._forget(stream)
        hook = self._on_response
        if hook is not None:
            hook(stream.request, stream.status, stream.sent, trio.current_time() - stream.started)

    def _reset(self, stream: Stream, error_code: ErrorCodes) -> None:
        if stream.phase is Phase.CLOSED:
            return
        if self._sending():
            self._engine.reset_stream(stream.id, error_code)
        self._forget(stream)
        self._sender.kick()

    def _forget(self, stream: Stream) -> None:
        """The stream is closed: its tasks are cancelled (a finished handler's are not), the
        window its unread body held is given back, and its slot is free."""
        if stream.phase is not Phase.ENDING:
            for scope in stream.scopes:
                scope.cancel()
        unread = stream.take_unread()
        stream.finish()
        if stream.request is not None:
            stream.request.body._abandon()
            stream.request._exchange = None
        self._sender.blocked.discard(stream)
        self._streams.pop(stream.id, None)
        self._acknowledge(stream.id, unread)
        if not self._streams:
            self._idle_since = trio.current_time()
        self._retime()
        self._sender.kick()

    async def _linger(self) -> None:
        """After the last GOAWAY: half-close, then read and discard until the client closes or
        linger_timeout passes, so that unread bytes cannot make the kernel reset the GOAWAY away."""
        transport = self._transport
        with trio.move_on_after(self._settings.linger_timeout):
            try:
                if isinstance(transport, trio.abc.HalfCloseableStream):
                    await transport.send_eof()
                while await transport.receive_some(_LINGER_READ):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, OSError):
                pass

    def _peer(self) -> str:
        return str(self._client) if self._client is not None else "an unknown peer"


def _check_declared_length(stream: Stream, fields: list[tuple[bytes, bytes]], limit: int | None) -> None:
    """A body whose content-length is over max_body_size fails at once (h2 checks the field)."""
    if limit is None:
        return
    for name, value in fields:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            stream.fail_body(ProtocolError(413, f"the request body is larger than max_body_size ({limit} bytes)"))
            return
