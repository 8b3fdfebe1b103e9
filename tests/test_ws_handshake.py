"""The opening handshake and permessage-deflate negotiation, without sockets."""

from __future__ import annotations

import pytest
from conftest import WS_ACCEPT, WS_KEY
from wsproto.extensions import PerMessageDeflate

from trio_httpchannel import Headers
from trio_httpchannel.websocket import HandshakeError, is_websocket_upgrade
from trio_httpchannel.websocket._deflate import negotiate_deflate
from trio_httpchannel.websocket._handshake import parse_handshake

VALID = [
    ("host", "example.com"),
    ("upgrade", "websocket"),
    ("connection", "Upgrade"),
    ("sec-websocket-key", WS_KEY),
    ("sec-websocket-version", "13"),
]


def headers(*fields: tuple[str, str], without: str = "") -> Headers:
    kept = [(name, value) for name, value in VALID if name != without]
    raw = [(name.encode(), value.encode()) for name, value in [*kept, *fields]]
    return Headers(raw)


def replaced(name: str, value: str) -> Headers:
    return headers((name, value), without=name)


def refusal(method: str = "GET", version: str = "1.1", fields: Headers | None = None) -> HandshakeError:
    with pytest.raises(HandshakeError) as caught:
        parse_handshake(method, version, fields or headers())
    return caught.value


@pytest.mark.parametrize("upgrade", ["websocket", "WebSocket", "h2c, websocket", "websocket/13"])
def test_an_upgrade_field_naming_websocket_asks_for_a_websocket(upgrade):
    assert is_websocket_upgrade("1.1", replaced("upgrade", upgrade))


@pytest.mark.parametrize("fields", [replaced("upgrade", "h2c"), headers(without="upgrade")])
def test_other_upgrades_and_plain_requests_are_plain_http(fields):
    assert not is_websocket_upgrade("1.1", fields)


def test_an_upgrade_field_in_http_1_0_is_ignored():
    assert not is_websocket_upgrade("1.0", headers())


def test_a_valid_handshake_gives_its_key_subprotocols_and_offers():
    handshake = parse_handshake(
        "GET",
        "1.1",
        headers(
            ("sec-websocket-protocol", "chat.v2, chat.v1"),
            ("sec-websocket-protocol", "json"),
            ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits, x-other"),
        ),
    )
    assert handshake.key == WS_KEY.encode()
    assert handshake.subprotocols == ("chat.v2", "chat.v1", "json")
    assert handshake.extension_offers == ("permessage-deflate; client_max_window_bits", "x-other")


def test_connection_may_list_other_tokens_with_upgrade():
    parse_handshake("GET", "1.1", replaced("connection", "keep-alive, Upgrade"))


@pytest.mark.parametrize(
    "method, version, fields",
    [
        ("POST", "1.1", headers()),
        ("GET", "1.0", headers()),
        ("GET", "1.1", replaced("connection", "keep-alive")),
        ("GET", "1.1", headers(without="connection")),
        ("GET", "1.1", headers(without="sec-websocket-key")),
        ("GET", "1.1", replaced("sec-websocket-key", "not base64!")),
        ("GET", "1.1", replaced("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAA")),
        ("GET", "1.1", headers(("sec-websocket-key", WS_KEY))),
        ("GET", "1.1", headers(("content-length", "5"))),
        ("GET", "1.1", headers(("transfer-encoding", "chunked"))),
    ],
    ids=[
        "post",
        "http-1.0",
        "no-upgrade-token",
        "no-connection",
        "no-key",
        "key-not-base64",
        "key-of-15-bytes",
        "two-keys",
        "body",
        "chunked-body",
    ],
)
def test_a_malformed_handshake_is_refused_with_400(method, version, fields):
    assert refusal(method, version, fields).status == 400


def test_a_missing_version_is_refused_with_400_naming_version_13():
    error = refusal(fields=headers(without="sec-websocket-version"))
    assert (error.status, error.headers) == (400, [(b"Sec-WebSocket-Version", b"13")])


@pytest.mark.parametrize("version", ["8", "13, 8", "14"])
def test_another_version_is_refused_with_426_naming_version_13(version):
    error = refusal(fields=replaced("sec-websocket-version", version))
    assert error.status == 426
    assert (b"Sec-WebSocket-Version", b"13") in error.headers and (b"Upgrade", b"websocket") in error.headers


def accept_head(fields: Headers | None = None, **options: object) -> list[bytes]:
    handshake = parse_handshake("GET", "1.1", fields or headers())
    options.setdefault("per_message_deflate", True)
    options.setdefault("max_size", 1 << 20)
    return handshake.accept(**options).head.split(b"\r\n")  # type: ignore[arg-type]


def test_the_101_carries_the_accept_token_of_the_key():
    lines = accept_head()
    assert lines[0] == b"HTTP/1.1 101 Switching Protocols"
    assert f"Sec-WebSocket-Accept: {WS_ACCEPT}".encode() in lines
    assert b"Upgrade: websocket" in lines and b"Connection: Upgrade" in lines
    assert lines[-2:] == [b"", b""]


def test_the_chosen_subprotocol_and_extra_headers_are_in_the_101():
    lines = accept_head(headers(("sec-websocket-protocol", "a, b")), subprotocol="b", headers=[("set-cookie", "id=1")])
    assert b"Sec-WebSocket-Protocol: b" in lines and b"set-cookie: id=1" in lines


def test_a_subprotocol_the_client_did_not_offer_is_a_value_error():
    with pytest.raises(ValueError, match="not offered"):
        accept_head(headers(("sec-websocket-protocol", "a")), subprotocol="c")


@pytest.mark.parametrize("name", ["Sec-WebSocket-Accept", "upgrade", "sec-websocket-protocol", "content-length"])
def test_a_header_the_handshake_sets_cannot_be_given(name):
    with pytest.raises(ValueError, match="handshake"):
        accept_head(headers=[(name, "x")])


def test_a_header_that_could_split_the_response_is_a_value_error():
    with pytest.raises(ValueError):
        accept_head(headers=[("x-evil", "a\r\nInjected: yes")])


def test_permessage_deflate_is_accepted_when_offered_and_enabled():
    fields = headers(("sec-websocket-extensions", "permessage-deflate; client_max_window_bits"))
    handshake = parse_handshake("GET", "1.1", fields)
    accepted = handshake.accept(per_message_deflate=True, max_size=100)
    assert b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15" in accepted.head
    assert [type(extension).__mro__[1] for extension in accepted.extensions] == [PerMessageDeflate]


def test_permessage_deflate_is_not_negotiated_when_disabled():
    fields = headers(("sec-websocket-extensions", "permessage-deflate"))
    accepted = parse_handshake("GET", "1.1", fields).accept(per_message_deflate=False, max_size=100)
    assert b"Sec-WebSocket-Extensions" not in accepted.head and accepted.extensions == []


@pytest.mark.parametrize(
    "offers, answer",
    [
        (["permessage-deflate"], "permessage-deflate"),
        (["permessage-deflate; server_no_context_takeover"], "permessage-deflate; server_no_context_takeover"),
        (['permessage-deflate; client_max_window_bits="10"'], "permessage-deflate; client_max_window_bits=10"),
        (["x-unknown", "permessage-deflate"], "permessage-deflate"),
        (["permessage-deflate; server_max_window_bits=8", "permessage-deflate"], "permessage-deflate"),
        (
            ["permessage-deflate; mystery", "permessage-deflate; client_no_context_takeover"],
            "permessage-deflate; client_no_context_takeover",
        ),
    ],
    ids=["plain", "flag", "quoted-bits", "after-unknown-extension", "after-window-8", "after-unknown-parameter"],
)
def test_the_first_acceptable_deflate_offer_is_taken(offers, answer):
    negotiated = negotiate_deflate(offers, 100)
    assert negotiated is not None and negotiated[1] == answer


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; foo=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=ten",
        "permessage-deflate; server_no_context_takeover=1",
    ],
    ids=["unknown", "repeated", "server-bits-without-value", "bits-16", "bits-not-a-number", "flag-with-value"],
)
def test_a_deflate_offer_breaking_rfc_7692_is_declined(offer):
    assert negotiate_deflate([offer], 100) is None


def test_offers_negotiated_one_after_another_do_not_share_parameters():
    first = negotiate_deflate(["permessage-deflate; client_max_window_bits=10"], 100)
    second = negotiate_deflate(["permessage-deflate"], 100)
    assert first is not None and second is not None
    assert (first[0].client_max_window_bits, second[0].client_max_window_bits) == (10, 15)
