"""WebSockets over HTTP/2 (RFC 8441): an extended CONNECT with ``:protocol: websocket`` becomes
a WebSocket whose frames ride its stream's DATA, served by the same handshake, native API, ASGI
adapter and session as over HTTP/1.1.

```
h2 ─DATA─▶ Stream.inbox ─▶ StreamTunnel.receive_some ─▶ Session reader ─▶ [ws_max_queue] ─▶ app
            (the stream's window reopens only here, as the session reads)
h2 ◀─DATA── writer ◀── Sender (round robin, windows) ◀── StreamTunnel.send_all ◀── Session writer
```

:class:`StreamOpening` answers the handshake on the stream: ``200`` without END_STREAM (no
``Sec-WebSocket-Accept``: RFC 8441 section 5), or an ordinary HTTP/2 response refusing it.
:class:`StreamTunnel` then presents the stream to the session as a ``trio`` stream: reading
takes DATA (and only then gives its window back, so a session that stops reading stops its
client, and no other stream), writing hands bytes to the connection's writer and returns once
they are framed (the client's window holding it up), ``send_eof`` is END_STREAM, and closing
before both sides ended is ``RST_STREAM``: ``NO_ERROR`` after our END_STREAM (the close
handshake is over, the client is late to end its side), else ``CANCEL``, TCP's reset in RFC 8441
section 5.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import trio
from h2.errors import ErrorCodes

from .._errors import ClientDisconnected
from .._response import Response
from ..websocket import Opened
from ._head import response_fields, tunnel_fields
from ._stream import Phase, Stream, Tunnel

if TYPE_CHECKING:
    from ..websocket._handshake import Handshake, Negotiated
    from ._exchanges import Exchanges

__all__ = ["StreamOpening", "StreamTunnel", "end_tunnel"]


class StreamOpening:
    """The answer to the WebSocket handshake of an extended CONNECT on ``stream`` (see
    ``websocket.Opening``)."""

    __slots__ = ("_exchanges", "_stream")

    accept_status = 200

    def __init__(self, exchanges: Exchanges, stream: Stream) -> None:
        self._exchanges = exchanges
        self._stream = stream

    async def accept(self, handshake: Handshake, negotiated: Negotiated) -> Opened | None:
        """``200`` and the negotiated fields; the stream then carries the WebSocket. ``None``
        when the stream is already gone (reset, or the connection closing)."""
        fields = tunnel_fields(negotiated.fields)
        await trio.lowlevel.checkpoint()
        stream = self._stream
        if not self._exchanges.sender.open_tunnel(stream, fields):
            return None
        stream.tunnel = Tunnel.OPEN
        return Opened(StreamTunnel(self._exchanges, stream), b"", 0)

    async def reject(self, response: Response) -> int | None:
        """``response`` on the stream, as any HTTP/2 response; its body bytes once written,
        ``None`` when the stream ended first."""
        if not isinstance(response.body, (bytes, bytearray, memoryview)):
            raise TypeError("the response refusing a WebSocket has a bytes body, not a stream")
        response_fields(response, "CONNECT")  # raises ValueError here, as HTTP/1.1's refusal does
        stream = self._stream
        self._exchanges.sender.give(stream, response)
        await stream.wait_done()
        return None if stream.left else stream.sent

    async def after_refusal(self) -> None:
        """Nothing to do: the response ended the stream (and RST_STREAM (NO_ERROR) stopped the
        client's side, RFC 9113 section 8.1), while the connection goes on."""


class StreamTunnel(trio.abc.HalfCloseableStream):
    """An accepted WebSocket's stream as a ``trio`` stream, for one reading and one writing
    task (the session's). Errors are trio's: ``BrokenResourceError`` once the stream was reset
    or its connection ended, ``ClosedResourceError`` after :meth:`aclose`. As trio's own
    streams, a call already cancelled does nothing (a cancelled ``send_eof`` sends no
    END_STREAM), and one that did not have to wait still makes a scheduler pass."""

    def __init__(self, exchanges: Exchanges, stream: Stream) -> None:
        self._exchanges = exchanges
        self._stream = stream
        self._rest = b""
        self._closed = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The next bytes of DATA, ``b""`` once the client ended the stream."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("the WebSocket's stream is closed")
        waits = not self._rest and not self._stream.inbox
        data = self._rest or await self._next_data()
        if max_bytes is not None and len(data) > max_bytes:
            data, self._rest = data[:max_bytes], data[max_bytes:]
        else:
            self._rest = b""
        if not waits:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return data

    async def _next_data(self) -> bytes:
        stream = self._stream
        while True:
            try:
                chunk = await stream.next_chunk(math.inf)
            except ClientDisconnected as error:
                raise trio.BrokenResourceError("the WebSocket's stream was reset") from error
            except trio.ClosedResourceError:
                return b""  # our END_STREAM, then the client's: the stream is over as it should be
            if chunk is None:
                return b""
            data, flow = chunk
            self._exchanges.acknowledge(stream.id, flow)
            if data:
                return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Hand ``data`` to the connection's writer; return once it is framed as DATA."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("the WebSocket's stream is closed")
        stream = self._stream
        if stream.phase is not Phase.STREAMING:
            raise trio.BrokenResourceError("the WebSocket's stream is over")
        if not data:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        await self._exchanges.sender.hand_over(stream, bytes(data))
        if stream.left:
            raise trio.BrokenResourceError("the WebSocket's stream was reset")

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        """END_STREAM, after what was sent: the WebSocket's close handshake is over on our side."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("the WebSocket's stream is closed")
        self._exchanges.sender.end_body(self._stream)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def aclose(self) -> None:
        """End the stream: cleanly if both sides ended it, else with RST_STREAM (see
        :func:`end_tunnel`)."""
        if not self._closed:
            self._closed = True
            end_tunnel(self._exchanges, self._stream)
        await trio.lowlevel.checkpoint()


def end_tunnel(exchanges: Exchanges, stream: Stream) -> None:
    """The WebSocket on ``stream`` is done with it: forgotten if both sides ended it (h2
    closed it already), left to the writer if the client ended its side and our END_STREAM is
    queued (written, it closes the stream: ``stream_written``); reset with NO_ERROR if only we did (the session sends END_STREAM only
    once the close handshake is over both ways, so the client is merely late to end its side,
    as RFC 9113 section 8.1 has a server stop a request it no longer needs); else, an abort,
    reset with CANCEL."""
    if stream.phase is Phase.CLOSED:
        return
    if stream.phase is Phase.ENDING and stream.request_ended:
        return
    if stream.phase is Phase.SENT:
        if stream.request_ended:
            exchanges.forget(stream)
        else:
            exchanges.reset(stream, ErrorCodes.NO_ERROR)
        return
    exchanges.reset(stream, ErrorCodes.CANCEL)
