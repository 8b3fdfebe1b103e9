"""HTTP/2 clients for the tests, none of them our code: ``H2Client`` drives h2's client side
(which also checks that everything the server sends is valid HTTP/2), ``RawH2`` writes frames
built with hyperframe and hpack byte for byte, for the bad input h2 would refuse to send, and
reads the server's frames with hyperframe."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import hpack
import trio
from h2.settings import SettingCodes
from hyperframe.frame import Frame, HeadersFrame, SettingsFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class H2Response:
    """What came back on one stream."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.ended = False
        self.reset: int | None = None
        self.data_frames = 0
        self.end_on_data = False
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.informational: list[list[tuple[bytes, bytes]]] = []

    def header(self, name: str) -> str | None:
        for field, value in self.headers:
            if field == name.encode():
                return value.decode("latin-1")
        return None


class H2Client:
    """A client on h2's client side: requests on streams, responses gathered per stream."""

    def __init__(self, stream: trio.abc.Stream, **config: Any) -> None:
        self.stream = stream
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None, **config)
        )
        self.responses: dict[int, H2Response] = {}
        self.terminated: h2.events.ConnectionTerminated | None = None
        self.eof = False
        self.events: list[h2.events.Event] = []
        self.held: dict[int, int] = {}
        """Streams whose DATA is not acknowledged (their window stays shut) until
        :meth:`release`: the bytes held on each."""

    async def start(self, **settings: int) -> None:
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        await self.flush()

    async def upgrade(self, path: str = "/", *, settings: bytes | None = None) -> bytes:
        """Ask ``Upgrade: h2c`` with an HTTP/1.1 GET of ``path``; the server's HTTP/1.1 answer
        (its head), after which, on a ``101``, the connection speaks HTTP/2 and the answer to
        the GET is stream 1."""
        header = self.conn.initiate_upgrade_connection()
        assert header is not None
        request = (
            f"GET {path} HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            f"Upgrade: h2c\r\nHTTP2-Settings: {(settings or header).decode()}\r\n\r\n"
        ).encode()
        await self.stream.send_all(request)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data = await self.stream.receive_some(65536)
            assert data, f"closed after {buffer!r}"
            buffer += data
        head, _, rest = buffer.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 101 "):
            self.responses[1] = H2Response()
            await self.flush()
            for event in self.conn.receive_data(rest):
                self._note(event)
            await self.flush()
        return head

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            await self.stream.send_all(data)

    async def request(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        end: bool = True,
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "example.com")]
        fields += headers or []
        self.responses[stream_id] = H2Response()
        self.conn.send_headers(stream_id, fields, end_stream=end and body is None)
        if body is not None:
            await self.send_body(stream_id, body, end=end)
        await self.flush()
        return stream_id

    async def send_body(self, stream_id: int, body: bytes, *, end: bool = True) -> None:
        """Send ``body`` as the windows allow, reading the server's frames while they are shut."""
        view = memoryview(body)
        while view:
            window = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
            if window <= 0:
                await self.flush()
                await self.receive()
                continue
            self.conn.send_data(stream_id, bytes(view[:window]))
            view = view[window:]
        if end:
            self.conn.end_stream(stream_id)
        await self.flush()

    async def push(self, stream_id: int, data: bytes) -> None:
        """Send ``data`` now, in frames of the largest size, as far as the window goes."""
        size = self.conn.max_outbound_frame_size
        for start in range(0, len(data), size):
            self.conn.send_data(stream_id, data[start : start + size])
        await self.flush()

    async def receive(self) -> list[h2.events.Event]:
        """Read once and handle what came; an empty list at the end of the connection."""
        data = await self.stream.receive_some(65536)
        if not data:
            self.eof = True
            return []
        events = self.conn.receive_data(data)
        for event in events:
            self._note(event)
        self.events.extend(events)
        await self.flush()
        return events

    def _note(self, event: h2.events.Event) -> None:
        stream_id = getattr(event, "stream_id", None)
        response = self.responses.get(stream_id) if stream_id else None
        if isinstance(event, h2.events.ResponseReceived) and response is not None:
            response.headers = list(event.headers or [])
            response.status = int(dict(response.headers)[b":status"])
        elif isinstance(event, h2.events.DataReceived) and response is not None:
            response.body += event.data or b""
            response.data_frames += 1
            response.end_on_data = event.stream_ended is not None
            if event.stream_id in self.held:
                self.held[event.stream_id] += event.flow_controlled_length or 0
            else:
                self.conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id or 0)
        elif isinstance(event, h2.events.InformationalResponseReceived) and response is not None:
            response.informational.append(list(event.headers or []))
        elif isinstance(event, h2.events.TrailersReceived) and response is not None:
            response.trailers = list(event.headers or [])
        elif isinstance(event, h2.events.StreamEnded) and response is not None:
            response.ended = True
        elif isinstance(event, h2.events.StreamReset) and response is not None:
            response.reset = int(event.error_code or 0)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = event

    async def release(self, stream_id: int) -> None:
        """Acknowledge what :attr:`held` kept of ``stream_id``'s DATA, and from now on all of it."""
        held = self.held.pop(stream_id)
        if held:
            self.conn.acknowledge_received_data(held, stream_id)
        await self.flush()

    async def response(self, stream_id: int) -> H2Response:
        """Read until ``stream_id`` ends or is reset."""
        response = self.responses[stream_id]
        while not response.ended and response.reset is None:
            if self.eof or not await self.receive():
                raise EOFError(f"the connection ended before stream {stream_id} did")
        return response

    async def ping(self) -> None:
        """A round trip: once its ACK is back, everything the server sent before it is read."""
        self.conn.ping(b"roundtr1")
        await self.flush()
        while not any(isinstance(e, h2.events.PingAckReceived) for e in await self.receive()):
            if self.eof:
                raise EOFError("the connection ended before the PING ACK")

    async def until_terminated(self) -> h2.events.ConnectionTerminated:
        """Read until GOAWAY, then to the end of the connection."""
        while not self.eof:
            await self.receive()
        await self.stream.aclose()
        assert self.terminated is not None, "the connection closed without GOAWAY"
        return self.terminated

    async def get(self, path: str = "/", **kwargs: Any) -> H2Response:
        return await self.response(await self.request(path, **kwargs))


class RawH2:
    """Frames written byte for byte, and the server's frames read back one at a time."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.eof = False

    async def handshake(self, **settings: int) -> None:
        """Preface and SETTINGS, then the server's SETTINGS read and acknowledged."""
        frame = SettingsFrame(0)
        frame.settings = {SettingCodes[name]: value for name, value in settings.items()}
        await self.send(PREFACE + frame.serialize())
        while True:
            received = await self.frame()
            assert received is not None, "the server closed during the handshake"
            if isinstance(received, SettingsFrame) and "ACK" not in received.flags:
                ack = SettingsFrame(0)
                ack.flags.add("ACK")
                await self.send(ack.serialize())
                return

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send_frames(self, *frames: Frame) -> None:
        await self.send(b"".join(frame.serialize() for frame in frames))

    def block(self, fields: list[tuple[bytes, bytes]] | list[tuple[str, str]]) -> bytes:
        return bytes(self.encoder.encode(fields))

    def headers(
        self, stream_id: int, fields: Any, *, end_stream: bool = True, end_headers: bool = True
    ) -> HeadersFrame:
        frame = HeadersFrame(stream_id)
        frame.data = self.block(fields)
        if end_stream:
            frame.flags.add("END_STREAM")
        if end_headers:
            frame.flags.add("END_HEADERS")
        return frame

    async def frame(self) -> Frame | None:
        """The server's next frame, ``None`` at the end of the connection."""
        while True:
            if len(self.buffer) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(bytes(self.buffer[:9])))
                if len(self.buffer) >= 9 + length:
                    frame.parse_body(memoryview(bytes(self.buffer[9 : 9 + length])))
                    del self.buffer[: 9 + length]
                    return frame
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                data = b""
            if not data:
                self.eof = True
                return None
            self.buffer += data

    async def until(self, kind: type[Frame], stream_id: int | None = None) -> Frame:
        """Skip frames until one of ``kind`` (on ``stream_id`` when given)."""
        while True:
            frame = await self.frame()
            if frame is None:
                raise EOFError(f"the connection ended before a {kind.__name__}")
            if isinstance(frame, kind) and (stream_id is None or frame.stream_id == stream_id):
                return frame

    async def frames_to_eof(self) -> list[Frame]:
        """The frames left, then the connection is closed on our side too."""
        frames = []
        while (frame := await self.frame()) is not None:
            frames.append(frame)
        await self.stream.aclose()
        return frames

    def decode(self, frame: HeadersFrame) -> list[tuple[bytes, bytes]]:
        return [(bytes(name), bytes(value)) for name, value in self.decoder.decode(frame.data, raw=True)]
