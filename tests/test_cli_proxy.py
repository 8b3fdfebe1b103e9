"""Proxy headers: who the client was, believed only from trusted peers, read from the right."""

from __future__ import annotations

import pytest

from trio_httpchannel import Headers, Request, RequestBody
from trio_httpchannel.server.proxy_headers import TrustedProxies, apply_proxy_headers


def request(*fields: tuple[str, str], client: object = ("127.0.0.1", 5000)) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in fields]
    return Request("GET", "/", "1.1", Headers(raw), RequestBody(None), client=client)  # type: ignore[arg-type]


def rewritten(trusted: str, *fields: tuple[str, str]) -> tuple[object, str]:
    incoming = request(*fields)
    apply_proxy_headers(incoming, TrustedProxies(trusted))
    return incoming.client, incoming.scheme


def test_x_forwarded_for_and_proto_set_client_and_scheme() -> None:
    assert rewritten("127.0.0.1", ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")) == (
        ("203.0.113.7", 0),
        "https",
    )


def test_a_forged_address_left_of_the_real_client_is_not_believed() -> None:
    chain = ("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.0.0.2")
    assert rewritten("127.0.0.1, 10.0.0.0/8", chain)[0] == ("203.0.113.7", 0)


def test_forwarded_wins_and_carries_port_and_proto() -> None:
    fields = (("Forwarded", 'for="[2001:db8::1]:4711";proto=https'), ("X-Forwarded-For", "6.6.6.6"))
    assert rewritten("127.0.0.1", *fields) == (("2001:db8::1", 4711), "https")


@pytest.mark.parametrize(("proto", "scheme"), [("wss", "https"), ("ws", "http"), ("WSS", "https")])
def test_a_websocket_proto_names_the_scheme_it_runs_over(proto: str, scheme: str) -> None:
    assert rewritten("127.0.0.1", ("X-Forwarded-Proto", proto))[1] == scheme


def test_an_unknown_proto_is_ignored() -> None:
    assert rewritten("127.0.0.1", ("X-Forwarded-Proto", "gopher"))[1] == "http"


@pytest.mark.parametrize(
    ("spec", "peer", "trusted"),
    [
        ("127.0.0.1", ("127.0.0.1", 1), True),
        ("127.0.0.1", ("10.0.0.1", 1), False),
        ("10.0.0.0/8, ::1", ("10.2.3.4", 1), True),
        ("10.0.0.0/8, ::1", ("::1", 1, 0, 0), True),
        ("*", ("198.51.100.1", 1), True),
        ("127.0.0.1", "", True),
    ],
)
def test_trusted_peers(spec: str, peer: object, trusted: bool) -> None:
    assert TrustedProxies(spec).trusts_peer(peer) is trusted  # type: ignore[arg-type]
