"""Deploys without errors, run for real: after SIGTERM new connections are refused at once
while in-flight requests finish, and ``--limit-max-requests`` retires workers under load
without losing a request."""

from __future__ import annotations

import json
import signal
import socket

import pytest
import trio
from cli_apps.harness import ServerProcess, Start, cli  # noqa: F401 (cli is a fixture)
from cli_apps.load import Load
from conftest import GET, RawClient

UPLOAD_START = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel"


def refused(server: ServerProcess) -> bool:
    try:
        socket.create_connection((server.host, server.port)).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_after_sigterm_new_connections_are_refused_while_in_flight_ones_finish(cli: Start, workers: str) -> None:
    server = await cli("apps:echo", "--workers", workers)
    in_flight = [RawClient(await server.open()) for _ in range(int(workers) * 4)]
    for client in in_flight:
        await client.send(UPLOAD_START)
    for client in in_flight:  # each has reached its app: a request it answers proves it
        await client.send(b"lo" + UPLOAD_START)
        assert (await client.read_response()).body == b"echo hello"
    server.signal(signal.SIGTERM)
    await server.stderr.wait_for("shutting down: stopped listening", count=int(workers))
    assert refused(server)
    for client in in_flight:
        await client.send(b"lo")
        response = await client.read_response()
        assert (response.body, response.header("connection")) == (b"echo hello", "close")
        await client.aclose()  # else the server lingers (linger_timeout) for more of its bytes
    assert await server.exit_status() == 0


async def test_limit_max_requests_retires_a_single_process_after_its_last_answer(cli: Start) -> None:
    server = await cli("apps:native", "--limit-max-requests", "3")
    client = RawClient(await server.open())
    responses = []
    for _ in range(3):
        await client.send(GET)
        responses.append(await client.read_response())
    assert [response.status for response in responses] == [200, 200, 200]
    assert [response.header("connection") for response in responses] == [None, None, "close"]
    await client.aclose()  # else the server lingers (linger_timeout) for more of its bytes
    assert await server.exit_status() == 0
    assert "retiring after 3 requests (--limit-max-requests)" in server.stderr.text


async def test_jitter_adds_at_most_its_value_to_the_limit(cli: Start) -> None:
    server = await cli("apps:native", "--limit-max-requests", "2", "--limit-max-requests-jitter", "2")
    answered = 0
    while server.process.returncode is None and answered < 10:
        response = await server.ask()
        answered += 1
        if response.header("connection") == "close":
            break
    assert 2 <= answered <= 4
    assert await server.exit_status() == 0


async def test_retiring_workers_lose_no_request_under_load(cli: Start) -> None:
    server = await cli(
        "balanced:app", "--workers", "2", "--limit-max-requests", "40", "--limit-max-requests-jitter", "20"
    )
    load = Load()
    enough = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: load.run(f"http://{server.host}:{server.port}/", until=enough, minimum=400, maximum=2000)
        )
        await server.stderr.wait_for(r"stopped on its own; starting its replacement", count=4, timeout=120)
        enough.set()
    assert load.errors == [], f"{len(load.errors)} of {load.done} requests failed: {load.errors[:5]}"
    assert len(load.pids) >= 4, load.pids
    server.signal(signal.SIGTERM)
    assert await server.exit_status() == 0


async def test_balanced_app_answers_who_it_is(cli: Start) -> None:
    server = await cli("balanced:app")
    who = json.loads((await server.ask()).body)
    assert who["client"][0] == "127.0.0.1" and who["scheme"] == "http" and who["alpn"] is None
