"""The streams of an HTTP/2 connection in flight: each opened (or refused) as its request
arrives, answered by a handler task of its own, its body handed to the handler as it reads,
and forgotten once its last frame is written or it is reset. An extended CONNECT for a
WebSocket (RFC 8441) is answered by the WebSocket handler instead (``_websocket.py``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import h2.events
import trio
from h2.connection import H2Connection
from h2.errors import ErrorCodes

from .._access import ResponseRecord
from .._config import Settings
from .._errors import ClientDisconnected, ProtocolError
from .._headers import Headers
from .._request import Address, Request, RequestBody
from .._response import Response, error_response
from .._tls import TLSInfo
from ..websocket import OpenWebSockets, WebSocketHandler, serve_extended_connect
from ._body import BodyReader
from ._guard import InboundGuard
from ._head import MalformedRequest, parse_request_head
from ._sending import Sender
from ._stream import Phase, Stream, Tunnel
from ._websocket import StreamOpening, end_tunnel

__all__ = ["Exchanges", "Handler", "ResponseHook", "Upgraded"]

Handler = Callable[[Request], Awaitable[Response]]
ResponseHook = Callable[[ResponseRecord], None]

logger = logging.getLogger("trio_httpchannel")

_NOT_FORWARDED = frozenset({b"connection", b"upgrade", b"http2-settings", b"keep-alive", b"transfer-encoding"})


class Upgraded:
    """An HTTP/1.1 request without a body that asked ``Upgrade: h2c``: answered as stream 1."""

    __slots__ = ("method", "target", "fields", "settings")

    def __init__(self, method: str, target: str, fields: list[tuple[bytes, bytes]], settings: bytes) -> None:
        self.method = method
        self.target = target
        self.fields = [(name, value) for name, value in fields if name not in _NOT_FORWARDED]
        self.settings = settings


class Exchanges:
    """The streams in flight (``streams``, by id) and the tasks that answer them, at most
    ``h2_max_concurrent_streams`` at once while ``accepting``. ``on_change`` is called when a
    stream ends (the connection's timers depend on how many are left). With a
    ``websocket_handler`` the connection advertised SETTINGS_ENABLE_CONNECT_PROTOCOL, and its
    WebSockets join ``open_websockets``."""

    def __init__(
        self,
        handler: Handler,
        settings: Settings,
        engine: H2Connection,
        guard: InboundGuard,
        *,
        on_response: ResponseHook | None,
        on_change: Callable[[], None],
        addresses: tuple[str, Address, Address],
        tls: TLSInfo | None = None,
        websocket_handler: WebSocketHandler | None = None,
        open_websockets: OpenWebSockets | None = None,
    ) -> None:
        self._handler = handler
        self._websocket_handler = websocket_handler
        self._open_websockets = open_websockets
        self._settings = settings
        self._engine = engine
        self._guard = guard
        self._on_response = on_response
        self._on_change = on_change
        self._scheme, self._client, self._server = addresses
        self._tls = tls
        self._peer = str(self._client) if self._client is not None else "an unknown peer"
        self.sender = Sender(engine, guard, self.reset)
        self.streams: dict[int, Stream] = {}
        self.accepting = True
        self.nursery: trio.Nursery
        self._handlers_running = 0
        self._handlers_done: trio.Event | None = None

    def open_upgraded(self, upgraded: Upgraded) -> None:
        """Answer the request of an ``Upgrade: h2c`` as stream 1, already complete."""
        stream = self._open(1, upgraded.method, True)
        stream.request = self._request(stream, upgraded.method, upgraded.target, upgraded.fields)
        self._handlers_running += 1
        self.nursery.start_soon(self._respond, stream)

    def forget_all(self) -> None:
        """The connection is closing: no stream can finish any more."""
        for stream in list(self.streams.values()):
            self.forget(stream)

    def on_data(self, event: h2.events.DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        flow = event.flow_controlled_length or 0
        data = event.data or b""
        if stream is None or stream.body_error is not None or stream.phase is Phase.CLOSED:
            self.acknowledge(event.stream_id, flow)
            return
        stream.received += len(data)
        limit = self._settings.max_body_size
        if limit is not None and stream.received > limit and stream.tunnel is Tunnel.NONE:
            self.acknowledge(event.stream_id, flow + stream.take_unread())
            stream.fail_body(ProtocolError(413, f"the request body is larger than max_body_size ({limit} bytes)"))
            return
        stream.put_body(data, flow)

    def acknowledge(self, stream_id: int, flow: int) -> None:
        if flow and self.sender.open:
            self._engine.acknowledge_received_data(flow, stream_id)
            self.sender.kick()

    def on_request(self, event: h2.events.RequestReceived) -> None:
        assert event.stream_id is not None
        stream_id = event.stream_id
        if not self._still_open(stream_id):
            return
        if not self.accepting or len(self.streams) >= self._settings.h2_max_concurrent_streams:
            self._guard.stream_refused(trio.current_time())
            self._engine.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        try:
            head = parse_request_head(
                event.headers or (),
                max_header_count=self._settings.max_header_count,
                extended_connect=self._websocket_handler is not None,
            )
        except MalformedRequest as error:
            logger.debug("malformed request on stream %d from %s: %s", stream_id, self._peer, error)
            self._guard.stream_refused(trio.current_time())
            self._engine.reset_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
            return
        except ProtocolError as error:
            stream = self._open(stream_id, "GET", event.stream_ended is not None)
            self.sender.give(stream, error_response(error.status, error.message))
            return
        if head.protocol is not None:
            self._offer_websocket(stream_id, head.method, head.target, head.fields, head.protocol, event)
            return
        stream = self._open(stream_id, head.method, event.stream_ended is not None)
        stream.request = self._request(stream, head.method, head.target, head.fields)
        if stream.request_ended is False:
            _check_declared_length(stream, head.fields, self._settings.max_body_size)
        self._handlers_running += 1
        self.nursery.start_soon(self._respond, stream)

    def _offer_websocket(
        self,
        stream_id: int,
        method: str,
        target: str,
        fields: list[tuple[bytes, bytes]],
        protocol: str,
        event: h2.events.RequestReceived,
    ) -> None:
        """An extended CONNECT: a WebSocket's goes to the WebSocket handler; one for another
        protocol is answered 501, one that ended its stream already (no room for frames) 400."""
        stream = self._open(stream_id, method, event.stream_ended is not None)
        if protocol.lower() != "websocket":
            message = f"extended CONNECT for {protocol!r}: this server serves only websocket"
            self.sender.give(stream, error_response(501, message))
            return
        if stream.request_ended:
            message = "an extended CONNECT for a WebSocket keeps its stream open for the WebSocket's frames"
            self.sender.give(stream, error_response(400, message))
            return
        stream.tunnel = Tunnel.OFFERED
        stream.request = Request(
            method,
            target,
            "2",
            Headers(fields),
            RequestBody(None),
            scheme=self._scheme,
            client=self._client,
            server=self._server,
            tls=self._tls,
        )
        self._handlers_running += 1
        self.nursery.start_soon(self._serve_websocket, stream)

    async def _serve_websocket(self, stream: Stream) -> None:
        """The WebSocket handler's task: it answers the handshake, then serves the WebSocket,
        which ends the stream; a stream it leaves open is reset (CANCEL)."""
        assert stream.request is not None and self._websocket_handler is not None
        try:
            await serve_extended_connect(
                StreamOpening(self, stream),
                stream.request,
                self._settings,
                self._websocket_handler,
                open_websockets=self._open_websockets,
                on_response=self._on_response,
            )
        finally:
            end_tunnel(self, stream)
            self._handler_done()

    def _still_open(self, stream_id: int) -> bool:
        """Whether h2 still holds the stream open. h2 handles a whole read before its events
        come here, so a stream the client reset in the same read (or that h2 reset for an
        error) is already closed when its request is handled: there is nothing to refuse or
        answer, and h2 would raise at the attempt."""
        stream = self._engine.streams.get(stream_id)
        return stream is not None and not stream.closed

    def _open(self, stream_id: int, method: str, ended: bool) -> Stream:
        stream = Stream(self, stream_id, method, ended)
        if self._on_response is not None:
            stream.started = trio.current_time()
        self.streams[stream_id] = stream
        return stream

    def _request(self, stream: Stream, method: str, target: str, fields: list[tuple[bytes, bytes]]) -> Request:
        body = RequestBody(None if stream.request_ended else BodyReader(stream, self._settings.body_timeout))
        request = Request(
            method,
            target,
            "2",
            Headers(fields),
            body,
            scheme=self._scheme,
            client=self._client,
            server=self._server,
            tls=self._tls,
            nursery=self.nursery,
        )
        request._exchange = stream
        return request

    # Handler tasks -----------------------------------------------------------------------------

    async def _respond(self, stream: Stream) -> None:
        try:
            with trio.CancelScope() as scope:
                stream.scopes.append(scope)
                if stream.phase is Phase.CLOSED:
                    scope.cancel()
                response = await self._call_handler(stream)
                if stream.response is None:
                    await self.sender.deliver(stream, response)
        finally:
            self._handler_done()

    def _handler_done(self) -> None:
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
        except ClientDisconnected as error:  # the stream is over: this answer goes nowhere
            logger.debug("the handler of stream %d stopped, its client gone: %s", stream.id, error)
            return error_response(400, "the request could not be completed")
        except Exception:
            logger.exception("the handler failed on %r from %s", stream.request, self._peer)
            return error_response(500, "the server failed to produce a response")
        return response

    async def respond_early(self, stream: Stream, response: Response) -> None:
        """Give ``response`` before the handler returns. A whole body is queued at once,
        without a scheduler pass (as HTTP/1.1 sets a pipelined response aside): the handler
        goes on in the same step; a stream is sent by a task of its own, since the handler's
        task is producing it."""
        if stream.response is not None:
            raise RuntimeError("the response to this request was already given")
        if isinstance(response.body, (bytes, bytearray, memoryview)):
            self.sender.give(stream, response)
            return
        stream.response = response
        self.nursery.start_soon(self._send_in_own_task, stream, response)

    async def _send_in_own_task(self, stream: Stream, response: Response) -> None:
        with trio.CancelScope() as scope:
            stream.scopes.append(scope)
            if stream.phase is Phase.CLOSED:
                scope.cancel()
            await self.sender.deliver(stream, response)

    def stream_written(self, stream: Stream) -> None:
        """The last frame of ``stream``'s response is written: the stream is over. A request
        body still coming is stopped with RST_STREAM (NO_ERROR), RFC 9113 section 8.1; but a
        WebSocket's END_STREAM ends only our side, and its session waits for the client's."""
        if stream.phase is Phase.CLOSED:
            return
        if stream.tunnel is Tunnel.OPEN and not stream.request_ended:
            stream.advance(Phase.SENT)
            return
        if not stream.request_ended and self.sender.open:
            self._engine.reset_stream(stream.id, ErrorCodes.NO_ERROR)
        self.forget(stream)
        self._record(stream, complete=True)

    def _record(self, stream: Stream, *, complete: bool) -> None:
        """Tell the access-log hook of a response that started to go out, once it is over (a
        WebSocket's handshake is recorded by the WebSocket layer, as over HTTP/1.1)."""
        hook = self._on_response
        if hook is not None and stream.tunnel is Tunnel.NONE:
            client = stream.request.client if stream.request is not None else None
            seconds = trio.current_time() - stream.started
            hook(ResponseRecord(client, stream.request, stream.status, stream.sent, seconds, complete))

    def reset(self, stream: Stream, error_code: ErrorCodes) -> None:
        if stream.phase is Phase.CLOSED:
            return
        if stream.phase is Phase.STREAMING:
            self._record(stream, complete=False)
        if self.sender.open:
            self._engine.reset_stream(stream.id, error_code)
        self.forget(stream)
        self.sender.kick()

    def forget(self, stream: Stream) -> None:
        """The stream is closed: its tasks are cancelled (a finished handler's are not), the
        window its unread body held is given back, and its slot is free."""
        if stream.phase is not Phase.ENDING and stream.phase is not Phase.SENT:
            for scope in stream.scopes:
                scope.cancel()
        unread = stream.take_unread()
        stream.finish()
        if stream.request is not None:
            stream.request.body._abandon()
            stream.request._exchange = None
        self.sender.blocked.discard(stream)
        self.streams.pop(stream.id, None)
        self.acknowledge(stream.id, unread)
        self._on_change()
        self.sender.kick()

    async def finish_handlers(self) -> None:
        """Handlers still running after their response (an ASGI app's background tasks) finish
        before the connection closes, as over HTTP/1.1."""
        if self._handlers_running:
            self._handlers_done = trio.Event()
            await self._handlers_done.wait()


def _check_declared_length(stream: Stream, fields: list[tuple[bytes, bytes]], limit: int | None) -> None:
    """A body whose content-length is over max_body_size fails at once (h2 checks the field)."""
    if limit is None:
        return
    for name, value in fields:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            stream.fail_body(ProtocolError(413, f"the request body is larger than max_body_size ({limit} bytes)"))
            return
