"""The PROXY protocol parser, without sockets: headers as bytes in, ProxyHeader or an error out.

Version 2 headers are built here with ``struct`` from the specification's layout; HAProxy and
nginx send real ones in ``tests/test_balancers.py``.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from conftest import GET, inet, tlv, v2
from hypothesis import given
from hypothesis import strategies as st

from trio_httpchannel.server.proxy_parser import (
    MAX_V1_LENGTH,
    ProxyHeader,
    ProxyProtocolError,
    parse_proxy_header,
)

# Version 1 -----------------------------------------------------------------------------------------


def test_v1_tcp4_gives_both_addresses_and_the_header_length() -> None:
    line = b"PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\r\n"
    header, length = parse_proxy_header(line + GET) or (None, 0)
    assert header == ProxyHeader(version=1, client=("203.0.113.7", 51000), server=("198.51.100.1", 443))
    assert length == len(line)


def test_v1_tcp6_addresses_are_written_compressed_as_sockets_give_them() -> None:
    line = b"PROXY TCP6 2001:db8:0:0::7 2001:db8::1 51000 443\r\n"
    header, _ = parse_proxy_header(line) or (None, 0)
    assert header is not None and (header.client, header.server) == (("2001:db8::7", 51000), ("2001:db8::1", 443))


def test_v1_unknown_carries_no_addresses_and_ignores_the_rest_of_its_line() -> None:
    header, length = parse_proxy_header(b"PROXY UNKNOWN whatever follows\r\n" + GET) or (None, 0)
    assert header is not None and not header.carries_addresses
    assert length == len(b"PROXY UNKNOWN whatever follows\r\n")


def test_v1_needs_more_data_at_every_split_of_the_line() -> None:
    line = b"PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\r\n"
    for end in range(len(line)):
        assert parse_proxy_header(line[:end]) is None, line[:end]


def test_v1_without_crlf_within_107_bytes_is_refused() -> None:
    with pytest.raises(ProxyProtocolError, match="107"):
        parse_proxy_header(b"PROXY TCP4 " + b"1" * (MAX_V1_LENGTH - 11))


def test_v1_of_exactly_107_bytes_is_accepted() -> None:
    line = b"PROXY UNKNOWN " + b"x" * (MAX_V1_LENGTH - 16) + b"\r\n"
    assert len(line) == MAX_V1_LENGTH
    assert parse_proxy_header(line) == (ProxyHeader(version=1), MAX_V1_LENGTH)


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 203.0.113.7 198.51.100.1 51000\r\n",  # a field missing
        b"PROXY TCP4 203.0.113.7  198.51.100.1 51000 443\r\n",  # two spaces
        b"PROXY TCP4 2001:db8::7 198.51.100.1 51000 443\r\n",  # IPv6 under TCP4
        b"PROXY TCP6 203.0.113.7 2001:db8::1 51000 443\r\n",  # IPv4 under TCP6
        b"PROXY TCP4 203.0.113.256 198.51.100.1 51000 443\r\n",
        b"PROXY TCP4 203.0.113.7 198.51.100.1 65536 443\r\n",
        b"PROXY TCP4 203.0.113.7 198.51.100.1 051000 443\r\n",  # leading zero
        b"PROXY TCP4 203.0.113.7 198.51.100.1 -1 443\r\n",
        b"PROXY UDP4 203.0.113.7 198.51.100.1 51000 443\r\n",
        b"PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\n",  # bare LF
    ],
)
def test_v1_malformed_lines_are_refused(line: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(line)


# Version 2 -----------------------------------------------------------------------------------------


def test_v2_inet_gives_both_addresses_and_the_header_length() -> None:
    header_bytes = v2(payload=inet())
    header, length = parse_proxy_header(header_bytes + GET) or (None, 0)
    assert header == ProxyHeader(version=2, client=("203.0.113.7", 51000), server=("198.51.100.1", 443))
    assert length == len(header_bytes) == 28


def test_v2_inet6_addresses() -> None:
    header, _ = parse_proxy_header(v2(family=2, payload=inet("2001:db8::7", "2001:db8::1"))) or (None, 0)
    assert header is not None and (header.client, header.server) == (("2001:db8::7", 51000), ("2001:db8::1", 443))


def test_v2_unix_addresses_are_paths() -> None:
    payload = b"/run/client.sock".ljust(108, b"\0") + b"/run/app.sock".ljust(108, b"\0")
    header, _ = parse_proxy_header(v2(family=3, payload=payload)) or (None, 0)
    assert header is not None and (header.client, header.server) == ("/run/client.sock", "/run/app.sock")


def test_v2_local_keeps_no_addresses_even_when_some_are_sent() -> None:
    header, length = parse_proxy_header(v2(command=0, payload=inet())) or (None, 0)
    assert header == ProxyHeader(version=2, local=True) and not header.carries_addresses
    assert length == 28


def test_v2_unspec_family_carries_no_addresses() -> None:
    header, _ = parse_proxy_header(v2(family=0, transport=0)) or (None, 0)
    assert header is not None and not header.carries_addresses and not header.local


def test_v2_needs_more_data_until_its_announced_length() -> None:
    whole = v2(payload=inet() + tlv(0x01, b"h2"))
    for end in range(len(whole)):
        assert parse_proxy_header(whole[:end]) is None, end


def test_v2_tlvs_we_understand_are_parsed_and_all_are_kept() -> None:
    ssl = (
        struct.pack("!BI", 0x01 | 0x02 | 0x04, 0)
        + tlv(0x21, b"TLSv1.3")
        + tlv(0x22, b"alice")
        + tlv(0x23, b"TLS_AES_128_GCM_SHA256")
    )
    payload = (
        inet() + tlv(0x01, b"h2") + tlv(0x02, b"example.com") + tlv(0x05, b"id-1") + tlv(0x20, ssl) + tlv(0xE0, b"own")
    )
    header, _ = parse_proxy_header(v2(payload=payload)) or (None, 0)
    assert header is not None
    assert (header.alpn, header.authority, header.unique_id) == (b"h2", "example.com", b"id-1")
    assert header.ssl is not None and header.ssl.tls and header.ssl.verified
    assert (header.ssl.version, header.ssl.cn, header.ssl.cipher) == ("TLSv1.3", "alice", "TLS_AES_128_GCM_SHA256")
    assert [kind for kind, _ in header.tlvs] == [0x01, 0x02, 0x05, 0x20, 0xE0]
    assert header.tlvs[-1] == (0xE0, b"own")


def test_v2_ssl_tlv_of_a_plain_connection_says_it_was_not_tls() -> None:
    header, _ = parse_proxy_header(v2(payload=inet() + tlv(0x20, struct.pack("!BI", 0, 0)))) or (None, 0)
    assert header is not None and header.ssl is not None and not header.ssl.tls


@pytest.mark.parametrize(
    "raw",
    [
        v2(version=1, payload=inet()),
        v2(command=2, payload=inet()),
        v2(family=4, payload=inet()),
        v2(transport=2, payload=inet()),  # UDP
        v2(payload=inet()[:8]),  # shorter than its addresses
        v2(payload=inet() + b"\x01\x00"),  # a TLV cut in its length
        v2(payload=inet() + b"\x01\x00\x05ab"),  # a TLV past the end
        v2(payload=inet() + tlv(0x02, b"\xff\xfe")),  # authority not UTF-8
        v2(payload=inet() + tlv(0x20, b"\x01")),  # SSL TLV too short
    ],
)
def test_v2_malformed_headers_are_refused(raw: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(raw)


# Which versions, and what is not a header at all -----------------------------------------------------


def test_only_the_versions_asked_for_are_accepted() -> None:
    with pytest.raises(ProxyProtocolError, match="version 1 header"):
        parse_proxy_header(v2(payload=inet()), versions=(1,))
    with pytest.raises(ProxyProtocolError, match="version 2 header"):
        parse_proxy_header(b"PROXY UNKNOWN\r\n", versions=(2,))


def test_a_plain_http_request_is_not_a_header() -> None:
    with pytest.raises(ProxyProtocolError, match="does not start with a PROXY protocol"):
        parse_proxy_header(GET)


def test_the_first_byte_that_fits_neither_signature_is_enough_to_refuse() -> None:
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(b"G")
    assert parse_proxy_header(b"") is None


@given(st.binary(max_size=300))
def test_any_bytes_give_a_header_more_data_or_a_protocol_error(data: bytes) -> None:
    try:
        result = parse_proxy_header(data)
    except ProxyProtocolError:
        return
    if result is not None:
        assert 0 < result[1] <= len(data)


@given(st.ip_addresses(v=4), st.ip_addresses(v=4), st.integers(0, 65535), st.integers(0, 65535))
def test_v1_and_v2_agree_on_any_ipv4_addresses(
    client: ipaddress.IPv4Address, server: ipaddress.IPv4Address, client_port: int, server_port: int
) -> None:
    line = f"PROXY TCP4 {client} {server} {client_port} {server_port}\r\n".encode()
    one, _ = parse_proxy_header(line) or (None, 0)
    two, _ = parse_proxy_header(v2(payload=inet(str(client), str(server), (client_port, server_port)))) or (None, 0)
    assert one is not None and two is not None
    assert one.client == two.client == (str(client), client_port)
    assert one.server == two.server == (str(server), server_port)
