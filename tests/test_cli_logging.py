"""The server's own log lines on stderr, as the command line prints them."""

from __future__ import annotations

import re
import signal
from datetime import datetime, timezone

from cli_apps.harness import Start, cli  # noqa: F401 (cli is a fixture)

SERVER_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) \[(?P<pid>\d+)\] (?P<level>[A-Z]+): (?P<message>.+)"
)


async def test_server_log_lines_carry_an_iso_utc_time_the_pid_and_the_level(cli: Start) -> None:
    server = await cli("apps:native")
    server.signal(signal.SIGINT)
    assert await server.exit_status() == 0
    lines = [SERVER_LINE.fullmatch(line) for line in server.stderr.lines]
    assert all(lines), server.stderr.text
    assert [line.group("level") for line in lines if line] == ["INFO"] * len(lines)
    assert {line.group("pid") for line in lines if line} == {str(server.process.pid)}
    assert any(line.group("message").startswith("serving apps:native") for line in lines if line)
    when = datetime.strptime(lines[0].group("time"), "%Y-%m-%dT%H:%M:%S.%f%z")  # type: ignore[union-attr]
    assert when.tzinfo == timezone.utc
