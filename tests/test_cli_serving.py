"""The command line's ways of serving, run for real: workers, reload, TLS, proxy headers, a Unix
socket and an inherited file descriptor."""

from __future__ import annotations

import signal
import socket
import ssl
from pathlib import Path

import trio
import trustme
from cli_apps.harness import Start, cli  # noqa: F401 (cli is a fixture)
from conftest import GET, RawClient, ask


async def test_two_workers_serve_and_shut_down_cleanly(cli: Start) -> None:
    server = await cli("apps:native", "--workers", "2")
    responses = [await ask(await server.open()) for _ in range(4)]
    server.signal(signal.SIGTERM)
    assert await server.exit_status() == 0
    assert {response.body for response in responses} == {b"native 127.0.0.1 http"}
    assert "worker 1 (pid" in server.stderr.text and "worker 2 (pid" in server.stderr.text
    assert server.stderr.text.count(") stopped") == 2


async def test_access_log_is_off_with_two_workers_unless_asked(cli: Start) -> None:
    quiet = await cli("apps:native", "--workers", "2")
    asked = await cli("apps:native", "--workers", "2", "--access-log")
    for server in (quiet, asked):
        await ask(await server.open())
    await asked.stdout.wait_for('"GET / HTTP/1.1" 200')
    quiet.signal()
    assert await quiet.exit_status() == 0
    assert quiet.stdout.lines == []


async def test_a_crashed_worker_is_restarted(cli: Start) -> None:
    server = await cli("apps:crashing", "--workers", "2")
    crashed = RawClient(await server.open())
    await crashed.send(b"GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")
    with trio.fail_after(30):
        assert await crashed.read_to_eof() == b""
    await server.stderr.wait_for(r"exited with status 3; restarting it")
    await server.stderr.wait_for(r"worker \d \(pid \d+\) serving", count=3)
    responses = [await ask(await server.open()) for _ in range(4)]
    assert {response.status for response in responses} == {200}


async def test_tls_round_trip_with_a_throwaway_certificate(cli: Start, tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(str(certfile))
    certificate.private_key_pem.write_to_path(str(keyfile))
    server = await cli("apps:native", "--certfile", str(certfile), "--keyfile", str(keyfile))
    assert (await server.started()).group("scheme") == "https"
    context = ssl.create_default_context()
    authority.configure_trust(context)
    stream = trio.SSLStream(await server.open(), context, server_hostname="127.0.0.1")
    response = await ask(stream)
    assert (response.status, response.body) == (200, b"native 127.0.0.1 https")


FORWARDED = b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n\r\n"


async def test_proxy_headers_are_believed_from_an_allowed_peer(cli: Start) -> None:
    server = await cli("apps:native", "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    assert (await ask(await server.open(), FORWARDED)).body == b"native 203.0.113.7 https"


async def test_proxy_headers_are_ignored_from_other_peers(cli: Start) -> None:
    server = await cli("apps:native", "--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8")
    assert (await ask(await server.open(), FORWARDED)).body == b"native 127.0.0.1 http"


async def test_proxy_headers_are_ignored_without_the_option(cli: Start) -> None:
    server = await cli("apps:native")
    assert (await ask(await server.open(), FORWARDED)).body == b"native 127.0.0.1 http"


async def test_proxy_protocol_option_takes_the_client_from_the_header(cli: Start) -> None:
    server = await cli("apps:native", "--proxy-protocol", "v1")
    header = b"PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\r\n"
    assert (await ask(await server.open(), header + GET)).body == b"native 203.0.113.7 http"


async def test_proxy_protocol_option_closes_a_connection_without_the_header(cli: Start) -> None:
    server = await cli("apps:native", "--proxy-protocol", "auto")
    client = RawClient(await server.open())
    await client.send(GET)
    with trio.fail_after(30):
        assert await client.read_to_eof() == b""


async def test_serves_on_a_unix_socket_and_removes_it_at_exit(cli: Start, tmp_path: Path) -> None:
    path = tmp_path / "server.sock"
    server = await cli("apps:native", "--uds", str(path))
    assert (await server.started()).group("url") == f"unix:{path}"
    response = await ask(await trio.open_unix_socket(str(path)))
    server.signal()
    assert await server.exit_status() == 0
    assert response.body == b"native - http"
    assert not path.exists()


async def test_serves_on_an_inherited_file_descriptor(cli: Start) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        server = await cli("apps:native", "--fd", str(listening.fileno()), pass_fds=[listening.fileno()])
        assert server.port == listening.getsockname()[1]
        assert (await ask(await server.open())).status == 200


async def test_reload_restarts_the_worker_after_a_source_change(cli: Start, tmp_path: Path) -> None:
    module = tmp_path / "changing.py"
    module.write_text(VERSIONED.format(version=1))
    server = await cli("changing:app", "--reload", "--app-dir", str(tmp_path))
    assert (await ask(await server.open())).body == b"version 1"
    module.write_text(VERSIONED.format(version=2))
    await server.stderr.wait_for("changing.py changed: restarting")
    await server.stderr.wait_for(r"worker 1 \(pid \d+\) serving", count=2)
    assert (await ask(await server.open())).body == b"version 2"
    server.signal(signal.SIGINT)
    assert await server.exit_status() == 0


VERSIONED = """
from trio_httpchannel import Response

async def app(request):
    return Response(200, [], b"version {version}")
"""
