"""A WebSocket over HTTP/2 (RFC 8441) for the tests, none of it our code: h2's client side opens
the extended CONNECT and carries the DATA (checking that everything the server sends is valid
HTTP/2), wsproto's handshake-free ``Connection`` (client side) makes and parses the WebSocket
frames. No independent client program speaks RFC 8441 here: curl and the websockets package
open WebSockets over HTTP/1.1 only."""

from __future__ import annotations

from typing import Any

import h2.events
from _h2 import H2Client, H2Response
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, Event, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate


def extended_connect(
    path: str = "/", *extra: tuple[str, str], version: str = "13", protocol: str = "websocket"
) -> list[tuple[str, str]]:
    """The header list of an extended CONNECT for a WebSocket at ``path``, ``extra`` added."""
    return [
        (":method", "CONNECT"),
        (":protocol", protocol),
        (":scheme", "http"),
        (":path", path),
        (":authority", "example.com"),
        ("sec-websocket-version", version),
        *extra,
    ]


class H2WebSocket:
    """One WebSocket on a stream of ``client``'s connection. ``response`` is the stream's
    answer; :meth:`send` writes wsproto events as DATA, :meth:`events` reads what the server sent."""

    def __init__(self, client: H2Client, stream_id: int, extensions: list[Extension]) -> None:
        self.client = client
        self.stream_id = stream_id
        self.ws = Connection(ConnectionType.CLIENT, extensions=extensions)
        self._fed = 0
        self._pending: list[Event] = []

    @classmethod
    async def open(
        cls, client: H2Client, path: str = "/", *extra: tuple[str, str], deflate: bool = False, **options: Any
    ) -> H2WebSocket:
        """Send the extended CONNECT and read until its response's HEADERS (or its reset)."""
        extensions: list[Extension] = []
        if deflate:
            extra += (("sec-websocket-extensions", "permessage-deflate"),)
        stream_id = client.conn.get_next_available_stream_id()
        client.responses[stream_id] = H2Response()
        client.conn.send_headers(stream_id, extended_connect(path, *extra, **options), end_stream=False)
        await client.flush()
        websocket = cls(client, stream_id, extensions)
        response = websocket.response
        while response.status is None and response.reset is None:
            if not await client.receive():
                raise EOFError("the connection ended before the extended CONNECT was answered")
        offer = response.header("sec-websocket-extensions")
        if deflate and offer is not None:
            extension = PerMessageDeflate()
            extension.finalize(offer)
            websocket.ws = Connection(ConnectionType.CLIENT, extensions=[extension])
        return websocket

    @property
    def response(self) -> H2Response:
        return self.client.responses[self.stream_id]

    async def send(self, event: Event, *, end: bool = False) -> None:
        self.client.conn.send_data(self.stream_id, self.ws.send(event), end_stream=end)
        await self.client.flush()

    async def send_raw(self, data: bytes, *, end: bool = False) -> None:
        self.client.conn.send_data(self.stream_id, data, end_stream=end)
        await self.client.flush()

    async def end(self) -> None:
        """END_STREAM: our side of the stream is over."""
        self.client.conn.end_stream(self.stream_id)
        await self.client.flush()

    async def events(self) -> list[Event]:
        """The next WebSocket events, reading as needed; ``[]`` once the stream ended or was
        reset with nothing more."""
        if self._pending:
            events, self._pending = self._pending, []
            return events
        while True:
            body = self.response.body
            if self._fed < len(body):
                self.ws.receive_data(bytes(body[self._fed :]))
                self._fed = len(body)
            events = list(self.ws.events())
            if events:
                return events
            if self.response.ended or self.response.reset is not None:
                return []
            if not await self.client.receive():
                return []

    async def event(self) -> Event:
        """The next event."""
        events = await self.events()
        assert events, "the stream ended"
        self._pending = events[1:] + self._pending
        return events[0]

    async def message(self) -> bytes | str:
        """The next whole message (wsproto gives a long one in parts)."""
        parts: list[Any] = []
        while True:
            event = await self.event()
            assert isinstance(event, (TextMessage, BytesMessage)), event
            parts.append(event.data)
            if event.message_finished:
                return "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)

    async def until_stream_over(self) -> H2Response:
        """Read until the server ended the stream or reset it."""
        return await self.client.response(self.stream_id)

    def window(self) -> int:
        """How much more DATA the server's window lets us send on the stream."""
        return self.client.conn.local_flow_control_window(self.stream_id)

    def resets(self) -> list[h2.events.StreamReset]:
        return [e for e in self.client.events if isinstance(e, h2.events.StreamReset) and e.stream_id == self.stream_id]
