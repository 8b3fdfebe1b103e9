"""The command line's HTTP/2 options, run for real: a subprocess on a free port, spoken to with
h2's client and raw frames, over cleartext and TLS."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
import trustme
from _h2 import PREFACE, H2Client, RawH2
from cli_apps.harness import ServerProcess, Start, cli  # noqa: F401 (cli is a fixture)
from conftest import RawClient
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import DataFrame, GoAwayFrame, PingFrame, RstStreamFrame, SettingsFrame

GET = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "example.com")]
POST = [(":method", "POST"), (":path", "/"), (":scheme", "http"), (":authority", "example.com")]


async def tls_server(cli: Start, tmp_path: Path, *args: str) -> tuple[ServerProcess, ssl.SSLContext]:
    """The CLI serving ``apps:native`` over TLS with a throwaway certificate, and a client
    context that trusts it and offers ``h2`` and ``http/1.1``."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(str(certfile))
    certificate.private_key_pem.write_to_path(str(keyfile))
    server = await cli("apps:native", "--certfile", str(certfile), "--keyfile", str(keyfile), *args)
    context = ssl.create_default_context()
    authority.configure_trust(context)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return server, context


async def test_tls_picks_h2_by_alpn_and_serves_it(cli: Start, tmp_path: Path) -> None:
    server, context = await tls_server(cli, tmp_path)
    stream = trio.SSLStream(await server.open(), context, server_hostname="127.0.0.1")
    await stream.do_handshake()
    client = H2Client(stream)
    await client.start()
    with trio.fail_after(30):
        response = await client.get("/")
    assert stream.selected_alpn_protocol() == "h2"
    assert (response.status, bytes(response.body)) == (200, b"native 127.0.0.1 https")


async def test_no_h2_makes_tls_offer_only_http_1_1(cli: Start, tmp_path: Path) -> None:
    server, context = await tls_server(cli, tmp_path, "--no-h2")
    stream = trio.SSLStream(await server.open(), context, server_hostname="127.0.0.1")
    client = RawClient(stream)
    await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with trio.fail_after(30):
        response = await client.read_response()
    assert stream.selected_alpn_protocol() == "http/1.1"
    assert (response.status, response.body) == (200, b"native 127.0.0.1 https")


@pytest.mark.parametrize(("args", "env"), [(["--no-h2"], {}), ([], {"TRIO_HTTPCHANNEL_H2": "false"})])
async def test_no_h2_answers_the_prior_knowledge_preface_505(cli: Start, args: list[str], env: dict[str, str]) -> None:
    server = await cli("apps:native", *args, env=env)
    client = RawClient(await server.open())
    await client.send(PREFACE + SettingsFrame(0).serialize())
    with trio.fail_after(30):
        assert (await client.read_response()).status == 505


async def test_prior_knowledge_is_served_by_default(cli: Start) -> None:
    server = await cli("apps:native")
    client = H2Client(await server.open())
    await client.start()
    with trio.fail_after(30):
        response = await client.get("/")
    assert (response.status, bytes(response.body)) == (200, b"native 127.0.0.1 http")


@pytest.mark.parametrize(
    ("flag", "code", "value"),
    [
        ("--h2-max-concurrent-streams", SettingCodes.MAX_CONCURRENT_STREAMS, 7),
        ("--h2-max-header-list-size", SettingCodes.MAX_HEADER_LIST_SIZE, 4096),
        ("--h2-initial-window-size", SettingCodes.INITIAL_WINDOW_SIZE, 100000),
    ],
)
async def test_advertised_limits_reach_the_settings_frame(cli: Start, flag: str, code: int, value: int) -> None:
    server = await cli("apps:native", flag, str(value))
    raw = RawH2(await server.open())
    await raw.send(PREFACE + SettingsFrame(0).serialize())
    with trio.fail_after(30):
        settings = await raw.until(SettingsFrame)
    assert settings.settings[code] == value


async def test_a_stream_over_max_concurrent_streams_is_refused_and_the_first_goes_on(cli: Start) -> None:
    server = await cli("apps:echo", "--h2-max-concurrent-streams", "1")
    raw = RawH2(await server.open())
    with trio.fail_after(30):
        await raw.handshake()
        await raw.send_frames(raw.headers(1, POST, end_stream=False), raw.headers(3, GET))
        refused = await raw.until(RstStreamFrame)
        await raw.send_frames(DataFrame(1, data=b"hi", flags=["END_STREAM"]))
        answer = await raw.until(DataFrame, stream_id=1)
    assert (refused.stream_id, refused.error_code) == (3, ErrorCodes.REFUSED_STREAM)
    assert answer.data == b"echo hi"


async def test_max_resets_per_second_reaches_the_connection(cli: Start) -> None:
    server = await cli("apps:native", "--h2-max-resets-per-second", "2")
    raw = RawH2(await server.open())
    frames = []
    for stream_id in range(1, 2 * 10, 2):
        frames += [raw.headers(stream_id, GET, end_stream=False), RstStreamFrame(stream_id, error_code=8)]
    with trio.fail_after(30):
        await raw.handshake()
        await raw.send_frames(*frames)
        goaway = await raw.until(GoAwayFrame)
    assert goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM


async def test_max_control_frames_per_second_reaches_the_connection(cli: Start) -> None:
    server = await cli("apps:native", env={"TRIO_HTTPCHANNEL_H2_MAX_CONTROL_FRAMES_PER_SECOND": "5"})
    raw = RawH2(await server.open())
    with trio.fail_after(30):
        await raw.handshake()
        await raw.send_frames(*(PingFrame(0, opaque_data=b"%08d" % n) for n in range(20)))
        goaway = await raw.until(GoAwayFrame)
    assert goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
