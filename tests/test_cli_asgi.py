"""The command line serving ASGI apps: detection, lifespan around serving, root path, proxy
headers reaching the scope."""

from __future__ import annotations

import signal

from cli_apps.harness import ServerProcess, Start, cli  # noqa: F401 (cli is a fixture)


async def test_serves_an_asgi3_app_between_lifespan_startup_and_shutdown(cli: Start) -> None:
    server = await cli("apps:asgi")
    assert "apps:asgi (asgi3)" in (await server.started()).string
    response = await server.ask()
    server.signal(signal.SIGTERM)
    assert await server.exit_status() == 0
    assert response.body == b"asgi 127.0.0.1 http ''"
    lifespan = [line for line in server.stdout.lines if line.startswith("lifespan")]
    assert lifespan == ["lifespan startup", "lifespan shutdown"]


async def test_serves_an_asgi2_class(cli: Start) -> None:
    server = await cli("apps:ASGI2")
    assert (await server.ask()).body == b"asgi2"


async def test_root_path_reaches_the_scope(cli: Start) -> None:
    server = await cli("apps:asgi", "--root-path", "/mounted")
    assert (await server.ask()).body == b"asgi 127.0.0.1 http '/mounted'"


async def test_proxy_headers_reach_the_scope(cli: Start) -> None:
    server = await cli("apps:asgi", "--proxy-headers")
    forwarded = b"GET / HTTP/1.1\r\nHost: x\r\nForwarded: for=203.0.113.7;proto=https\r\n\r\n"
    assert (await server.ask(forwarded)).body == b"asgi 203.0.113.7 https ''"


async def test_failed_lifespan_startup_prints_one_line_and_exits_1(cli: Start) -> None:
    server = await cli("apps:failing_startup", wait=False)
    assert await server.exit_status() == 1
    (line,) = server.stderr.lines
    assert "the application failed to start" in line and "no database" in line
