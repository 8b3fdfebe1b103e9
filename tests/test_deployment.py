"""The deployment examples in ``deploy/``, run where the tool exists here: the systemd service's
command line under ``systemd-socket-activate`` (which passes the socket as systemd does), the
Dockerfile's entrypoint as the container would run it, and the Kubernetes Deployment's
arguments and timeouts checked against our options. The HAProxy and nginx configurations are
run by ``tests/test_balancers.py``."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml
from cli_apps.balancers import DEPLOY, address, spec, wait_listening
from cli_apps.harness import APPS, Processes, ServerProcess
from conftest import GET, RawClient

from trio_httpchannel.server.options import parse_options

APP = "myproject.web:app"

Run = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture
async def run(nursery: trio.Nursery) -> AsyncIterator[Run]:
    """``await run(command, env)`` starts a process, collecting its output; killed at the end."""
    processes = Processes(nursery)
    yield processes.start
    await processes.kill_all()


async def ask(where: tuple[str, int]) -> bytes:
    client = RawClient(await trio.open_tcp_stream(*where))
    await client.send(GET)
    with trio.fail_after(30):
        response = await client.read_response()
    assert response.status == 200
    return response.body


def our_command() -> list[str]:
    """The ``trio-httpchannel`` executable of this environment."""
    return [str(Path(sys.executable).parent / "trio-httpchannel")]


# systemd ---------------------------------------------------------------------------------------------


def unit_setting(name: str, key: str) -> str:
    match = re.search(rf"^{key}=(.*)$", (DEPLOY / name).read_text(), re.MULTILINE)
    assert match is not None, f"{name} has no {key}="
    return match.group(1)


async def test_systemd_socket_activation_serves_the_socket_passed_as_fd_3(run: Run) -> None:
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed (it comes with the systemd package)")
    options = shlex.split(unit_setting("trio-httpchannel.service", "ExecStart"))[1:]
    assert options[0] == APP and "--fd" in options
    where = address("127.0.0.4")
    command = [activate, "-l", spec(where), *our_command(), "balanced:app", "--app-dir", str(APPS), *options[1:]]
    server = await run(command, {})
    await wait_listening(where, server.process, server.stderr)
    first = json.loads(await ask(where))
    await server.stderr.wait_for(r"serving balanced:app on http://127\.0\.0\.4:\d+ with 2 worker")
    assert first["server"] == list(where)
    server.signal(signal.SIGTERM)
    assert await server.exit_status() == 0


def test_the_systemd_stop_timeout_is_above_the_graceful_timeout() -> None:
    options = parse_options(shlex.split(unit_setting("trio-httpchannel.service", "ExecStart"))[1:], {})
    assert float(unit_setting("trio-httpchannel.service", "TimeoutStopSec")) > options.graceful_timeout


# The container -----------------------------------------------------------------------------------------


def dockerfile() -> tuple[list[str], list[str], dict[str, str]]:
    """The Dockerfile's ENTRYPOINT, CMD (exec forms) and ENV."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in text.splitlines() if line[:1].isupper()}
    env = dict(pair.split("=", 1) for pair in shlex.split(instructions["ENV"]))
    return json.loads(instructions["ENTRYPOINT"]), json.loads(instructions["CMD"]), env


async def test_the_container_entrypoint_serves_and_stops_on_sigterm(run: Run) -> None:
    entrypoint, cmd, env = dockerfile()
    assert entrypoint == ["trio-httpchannel"] and cmd == [APP]
    where = address("127.0.0.5")
    env |= {
        "TRIO_HTTPCHANNEL_HOST": where[0],
        "TRIO_HTTPCHANNEL_PORT": str(where[1]),
        "TRIO_HTTPCHANNEL_APP_DIR": str(APPS),
    }
    server = await run([*our_command(), "balanced:app"], env)
    await server.stderr.wait_for(r"serving balanced:app on .* with 2 worker")
    assert json.loads(await ask(where))["client"][0] == "127.0.0.1"
    server.signal(signal.SIGTERM)
    assert await server.exit_status() == 0
    assert server.stdout.lines, "TRIO_HTTPCHANNEL_ACCESS_LOG=true: the access log is on with 2 workers"


# Kubernetes ----------------------------------------------------------------------------------------------


def deployment_container() -> tuple[Any, Any]:
    """The pod's spec and its one container, as parsed (YAML is untyped)."""
    manifest = yaml.safe_load((DEPLOY / "kubernetes.yaml").read_text())
    pod = manifest["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def test_the_kubernetes_arguments_are_valid_options() -> None:
    _, container = deployment_container()
    options = parse_options(container["args"], {})
    assert options.app == APP and options.port == container["ports"][0]["containerPort"]


def test_the_kubernetes_grace_period_covers_the_pre_stop_pause_and_the_graceful_timeout() -> None:
    pod, container = deployment_container()
    options = parse_options(container["args"], {})
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pause + options.graceful_timeout


def test_the_kubernetes_readiness_probe_asks_http_on_the_served_port() -> None:
    _, container = deployment_container()
    probe = container["readinessProbe"]["httpGet"]
    assert probe["port"] == container["ports"][0]["name"]
    options = parse_options(container["args"], {})
    assert options.settings["timeout"] > 60, "above the 60 s idle timeout of the balancers in front"
