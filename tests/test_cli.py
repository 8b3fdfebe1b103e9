"""The command line, run for real: a subprocess on a free port, spoken to over sockets."""

from __future__ import annotations

import signal
import socket

import trio
from cli_apps.harness import ServerProcess, Start, cli  # noqa: F401 (cli is a fixture)
from conftest import GET, RawClient


async def test_serves_a_native_app_named_module_colon_attribute(cli: Start) -> None:
    server = await cli("apps:native")
    response = await server.ask()
    assert (response.status, response.body) == (200, b"native 127.0.0.1 http")


async def test_startup_line_names_the_app_and_a_clickable_url(cli: Start) -> None:
    server = await cli("apps:native")
    match = await server.started()
    assert "apps:native (native)" in match.string
    assert match.group("url") == f"http://127.0.0.1:{server.port}"


async def test_serves_the_demo_app_without_an_app(cli: Start) -> None:
    server = await cli()
    page = await server.ask()
    echoed = await server.ask(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert page.status == 200 and b"trio-httpchannel is serving" in page.body
    assert (echoed.status, echoed.body) == (200, b"hello")


async def test_factory_is_called_for_the_app(cli: Start) -> None:
    server = await cli("--factory", "apps:make_native")
    assert (await server.ask()).body == b"native 127.0.0.1 http"


async def test_dotted_attribute_path_is_followed(cli: Start) -> None:
    server = await cli("apps:nested.handler")
    assert (await server.ask()).body == b"native 127.0.0.1 http"


async def test_small_max_header_length_gets_431(cli: Start) -> None:
    server = await cli("apps:native", "--max-header-length", "100", "--max-request-line", "64")
    response = await server.ask(b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 200 + b"\r\n\r\n")
    assert response.status == 431


async def test_small_max_body_size_gets_413(cli: Start) -> None:
    server = await cli("apps:echo", "--max-body-size", "4")
    response = await server.ask(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert response.status == 413


async def test_small_max_request_line_gets_414(cli: Start) -> None:
    server = await cli("apps:native", "--max-request-line", "32")
    response = await server.ask(b"GET /" + b"a" * 64 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.status == 414


async def test_small_max_header_count_gets_431(cli: Start) -> None:
    server = await cli("apps:native", "--max-header-count", "2")
    response = await server.ask(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n")
    assert response.status == 431


async def test_short_header_timeout_gets_408(cli: Start) -> None:
    server = await cli("apps:native", "--header-timeout", "0.2")
    response = await server.ask(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert response.status == 408


async def test_short_body_timeout_gets_408(cli: Start) -> None:
    server = await cli("apps:echo", "--body-timeout", "0.2")
    response = await server.ask(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhe")
    assert response.status == 408


async def test_short_timeout_closes_an_idle_connection(cli: Start) -> None:
    server = await cli("apps:native", "--timeout", "0.2")
    client = RawClient(await server.open())
    with trio.fail_after(30):
        assert await client.read_to_eof() == b""


async def test_environment_variable_sets_a_limit(cli: Start) -> None:
    server = await cli("apps:echo", env={"TRIO_HTTPCHANNEL_MAX_BODY_SIZE": "4"})
    response = await server.ask(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert response.status == 413


async def test_access_log_line_per_response_on_stdout(cli: Start) -> None:
    server = await cli("apps:native")
    await server.ask(b"GET /page?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    line = await server.stdout.wait_for(r'"GET /page\?x=1 HTTP/1.1"')
    assert line.string.startswith("127.0.0.1 - - [")
    assert line.string.split('" ')[1].split()[0] == "200"
    assert line.string.endswith("ms")


async def test_no_access_log_prints_nothing_per_response(cli: Start) -> None:
    server = await cli("apps:native", "--no-access-log")
    await server.ask()
    server.signal()
    assert await server.exit_status() == 0
    assert server.stdout.lines == []


async def in_flight(server: ServerProcess) -> RawClient:
    """A connection whose request is being handled: the handler waits for the rest of the body,
    which the client sends when it likes (the 100 Continue says the handler is reading)."""
    busy = RawClient(await server.open())
    await busy.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhe")
    with trio.fail_after(30):
        assert (await busy.read_head()).status == 100
    return busy


async def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(cli: Start) -> None:
    server = await cli("apps:echo")
    busy = await in_flight(server)
    idle = RawClient(await server.open())
    await idle.send(GET)
    await idle.read_response()
    server.signal(signal.SIGTERM)
    await server.stderr.wait_for("shutting down")
    with trio.fail_after(30):
        assert await idle.read_to_eof() == b""
        await busy.send(b"llo")
        response = await busy.read_response()
    assert (response.status, response.body) == (200, b"echo hello")
    assert response.header("connection") == "close"
    await busy.aclose()  # else the server lingers (linger_timeout) for more of its bytes
    assert await server.exit_status() == 0


async def test_second_sigint_exits_at_once_with_a_request_in_flight(cli: Start) -> None:
    server = await cli("apps:echo")
    busy = await in_flight(server)
    server.signal(signal.SIGINT)
    await server.stderr.wait_for("shutting down")
    server.signal(signal.SIGINT)
    assert await server.exit_status() == 130
    assert "exiting at once, aborting 1 connection(s)" in server.stderr.text
    with trio.fail_after(30):
        assert await busy.read_to_eof() == b""


async def test_third_connection_past_max_connections_2_gets_503(cli: Start) -> None:
    server = await cli("apps:native", "--max-connections", "2")
    first, second = RawClient(await server.open()), RawClient(await server.open())
    for client in (first, second):
        await client.send(GET)
        assert (await client.read_response()).status == 200
    third = await server.ask()
    assert third.status == 503 and third.header("connection") == "close"


async def test_unimportable_app_prints_one_line_and_exits_1(cli: Start) -> None:
    server = await cli("no_such_module:app", wait=False)
    assert await server.exit_status() == 1
    assert server.stderr.lines == [
        "trio-httpchannel: error: cannot import 'no_such_module': ModuleNotFoundError: No module named 'no_such_module'"
    ]


async def test_module_failing_at_import_prints_one_line_with_its_place(cli: Start) -> None:
    server = await cli("broken:app", wait=False)
    assert await server.exit_status() == 1
    (line,) = server.stderr.lines
    assert "RuntimeError: this module is broken on purpose" in line and "broken.py:3" in line


async def test_missing_attribute_prints_one_line_and_exits_1(cli: Start) -> None:
    server = await cli("apps:nothing_here", wait=False)
    assert await server.exit_status() == 1
    assert server.stderr.lines == ["trio-httpchannel: error: module 'apps' has no attribute 'nothing_here'"]


async def test_unknown_option_prints_one_line_and_exits_2(cli: Start) -> None:
    server = await cli("--no-such-option", wait=False)
    assert await server.exit_status() == 2
    assert len(server.stderr.lines) == 1 and "--no-such-option" in server.stderr.lines[0]


async def test_bad_setting_value_names_the_setting_and_exits_2(cli: Start) -> None:
    server = await cli("--max-header-length", "1", wait=False)
    assert await server.exit_status() == 2
    assert len(server.stderr.lines) == 1 and "max_header_length" in server.stderr.lines[0]


async def test_port_in_use_prints_one_line_and_exits_1(cli: Start) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = await cli("--port", str(port), wait=False)
        assert await server.exit_status() == 1
    (line,) = server.stderr.lines
    assert f"cannot listen on 127.0.0.1:{port}" in line
