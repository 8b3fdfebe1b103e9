"""The sans-io WebSocket protocol: whole messages, the size limit, the close handshake's states
and bounded inflation, fed raw client frames without sockets."""

from __future__ import annotations

import tracemalloc

from conftest import BINARY, CONTINUATION, PING, PONG, RSV1, TEXT, deflated, ws_close_frame, ws_frame
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from trio_httpchannel.websocket import CloseReason
from trio_httpchannel.websocket._deflate import negotiate_deflate
from trio_httpchannel.websocket._protocol import Closed, Message, PongReceived, Reply, State, WebSocketProtocol


def protocol(max_size: int = 1000, *, deflate: bool = False, trailing_data: bytes = b"") -> WebSocketProtocol:
    extensions = []
    if deflate:
        negotiated = negotiate_deflate(["permessage-deflate"], max_size)
        assert negotiated is not None
        extensions.append(negotiated[0])
    return WebSocketProtocol(extensions, max_size, trailing_data)


def feed(proto: WebSocketProtocol, *frames: bytes) -> list[object]:
    proto.receive_data(b"".join(frames))
    return list(proto.events())


def test_a_text_frame_is_a_text_message():
    assert feed(protocol(), ws_frame(TEXT, "héllo".encode())) == [Message("héllo")]


def test_fragments_are_joined_into_one_message():
    proto = protocol()
    frames = [
        ws_frame(BINARY, b"ab", fin=False),
        ws_frame(CONTINUATION, b"cd", fin=False),
        ws_frame(CONTINUATION, b"e"),
    ]
    assert feed(proto, *frames) == [Message(b"abcde")]


def test_fragments_split_across_reads_are_joined():
    proto = protocol()
    data = ws_frame(TEXT, b"one ", fin=False) + ws_frame(CONTINUATION, b"two")
    events = [event for byte in data for event in feed(proto, bytes([byte]))]
    assert events == [Message("one two")]


def test_frames_that_came_with_the_handshake_are_the_first_messages():
    proto = protocol(trailing_data=ws_frame(TEXT, b"early") + ws_frame(TEXT, b"bird"))
    assert list(proto.events()) == [Message("early"), Message("bird")]


def test_a_ping_owes_a_pong_with_its_payload():
    assert feed(protocol(), ws_frame(PING, b"hi")) == [Reply(Pong(b"hi"))]


def test_a_pong_is_reported():
    assert feed(protocol(), ws_frame(PONG, b"42")) == [PongReceived(b"42")]


def test_a_ping_between_fragments_is_answered_and_the_message_stays_whole():
    proto = protocol()
    events = feed(proto, ws_frame(TEXT, b"a", fin=False), ws_frame(PING, b"p"), ws_frame(CONTINUATION, b"b"))
    assert events == [Reply(Pong(b"p")), Message("ab")]


def test_the_clients_close_is_answered_with_its_code_and_reported():
    proto = protocol()
    events = feed(proto, ws_close_frame(4001, b"bye"))
    assert events == [Reply(CloseConnection(4001, "bye")), Closed(CloseReason(4001, "bye"))]
    assert proto.state is State.REMOTE_CLOSING
    answer = proto.encode(CloseConnection(4001, "bye"))
    assert answer == b"\x88\x05\x0f\xa1bye" and proto.state is State.CLOSED


def test_a_close_without_a_code_is_reported_as_1005_and_answered_empty():
    proto = protocol()
    events = feed(proto, ws_close_frame())
    assert events[-1] == Closed(CloseReason(1005))
    reply = events[0]
    assert isinstance(reply, Reply) and proto.encode(reply.event) == b"\x88\x00"


def test_our_close_then_the_clients_ends_the_handshake():
    proto = protocol()
    close = proto.start_close(1000, "done")
    assert close is not None and proto.state is State.LOCAL_CLOSING
    assert proto.encode(close) == b"\x88\x06\x03\xe8done"
    assert feed(proto, ws_close_frame(1000)) == [Closed(CloseReason(1000))]
    assert proto.state is State.CLOSED


def test_a_second_close_is_not_started():
    proto = protocol()
    assert proto.start_close(1000, "") is not None
    assert proto.start_close(1001, "") is None


def test_messages_after_our_close_are_dropped_and_pings_not_answered():
    proto = protocol()
    close = proto.start_close(1000, "")
    assert close is not None
    proto.encode(close)
    assert feed(proto, ws_frame(TEXT, b"late"), ws_frame(PING, b"x")) == []


def test_a_message_overtaken_by_the_close_is_not_encoded():
    proto = protocol()
    close = proto.start_close(1000, "")
    assert close is not None
    proto.encode(close)
    assert proto.encode(TextMessage("too late")) is None


def test_a_message_of_max_size_is_delivered():
    assert feed(protocol(10), ws_frame(BINARY, b"x" * 10)) == [Message(b"x" * 10)]


def test_a_fragmented_message_over_max_size_fails_with_1009():
    proto = protocol(10)
    events = feed(proto, ws_frame(BINARY, b"x" * 6, fin=False), ws_frame(CONTINUATION, b"x" * 5))
    assert [type(event) for event in events] == [Reply, Closed]
    assert events[1] == Closed(CloseReason(1009, "a message is longer than 10 bytes"))
    assert proto.state is State.CLOSED


def test_text_is_measured_in_utf8_bytes():
    proto = protocol(5)
    events = feed(proto, ws_frame(TEXT, "ééé".encode()))
    assert isinstance(events[-1], Closed) and events[-1].reason.code == 1009


def test_a_broken_rule_fails_with_its_code_and_stops_parsing():
    proto = protocol()
    events = feed(proto, ws_frame(TEXT, b"\xff"), ws_frame(TEXT, b"never parsed"))
    assert [type(event) for event in events] == [Reply, Closed]
    reply = events[0]
    assert isinstance(reply, Reply) and isinstance(reply.event, CloseConnection) and reply.event.code == 1007
    assert feed(proto, ws_frame(TEXT, b"after")) == []


def test_a_broken_rule_after_our_close_owes_no_second_close_frame():
    proto = protocol()
    close = proto.start_close(1000, "")
    assert close is not None
    proto.encode(close)
    events = feed(proto, ws_frame(TEXT, b"x", mask=False))
    assert events == [Closed(CloseReason(1002, "server received unexpected unmasked frame"))]


def test_a_lost_connection_is_1006_unless_the_close_handshake_ended():
    proto = protocol()
    assert proto.connection_lost() == Closed(CloseReason(1006))
    closed = protocol()
    feed(closed, ws_close_frame(1000))
    assert closed.connection_lost() is None and closed.close_reason == CloseReason(1000)


def test_a_compressed_message_is_inflated():
    proto = protocol(deflate=True)
    assert feed(proto, ws_frame(TEXT, deflated(b"hello " * 100), rsv=RSV1)) == [Message("hello " * 100)]


def test_a_compressed_message_inflating_past_max_size_fails_with_1009():
    proto = protocol(10_000, deflate=True)
    events = feed(proto, ws_frame(BINARY, deflated(b"\0" * 10_001), rsv=RSV1))
    assert isinstance(events[-1], Closed) and events[-1].reason.code == 1009


def test_a_compression_bomb_is_stopped_without_being_inflated_whole():
    bomb = ws_frame(BINARY, deflated(b"\0" * (256 << 20)), rsv=RSV1)
    assert len(bomb) < 300_000
    proto = protocol(1 << 20, deflate=True)
    tracemalloc.start()
    try:
        events = feed(proto, bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(events[-1], Closed) and events[-1].reason.code == 1009
    assert peak < 8 << 20, f"inflating the bomb took {peak} bytes"


def test_a_ping_between_compressed_fragments_leaves_the_message_compressed():
    payload = deflated(b"abcdef" * 50)
    half = len(payload) // 2
    frames = [
        ws_frame(TEXT, payload[:half], fin=False, rsv=RSV1),
        ws_frame(PING, b"p"),
        ws_frame(CONTINUATION, payload[half:]),
    ]
    assert feed(protocol(deflate=True), *frames) == [Reply(Pong(b"p")), Message("abcdef" * 50)]


def test_control_frames_between_compressed_messages_leave_them_compressed():
    proto = protocol(deflate=True)
    frames = [ws_frame(PONG, b"1"), ws_frame(TEXT, deflated(b"one"), rsv=RSV1), ws_frame(PING, b"2")]
    frames.append(ws_frame(TEXT, deflated(b"two"), rsv=RSV1))
    assert feed(proto, *frames) == [PongReceived(b"1"), Message("one"), Reply(Pong(b"2")), Message("two")]


def test_an_uncompressed_message_passes_a_deflate_connection_unchanged():
    proto = protocol(deflate=True)
    assert feed(proto, ws_frame(BINARY, b"plain")) == [Message(b"plain")]


def test_a_ping_owed_is_not_encoded_after_our_close():
    proto = protocol()
    close = proto.start_close(1000, "")
    assert close is not None
    proto.encode(close)
    assert proto.encode(Ping(b"x")) is None
