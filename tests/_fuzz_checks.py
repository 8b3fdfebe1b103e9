"""The invariants of a fuzz example (``_fuzz``), checked against what its run (``_fuzz_run``)
saw: the answers read back, the requests h11 finds in the stream, the handlers' books."""

from __future__ import annotations

import collections
import dataclasses
import math

import h11
from _fuzz import Example
from _fuzz_run import Run
from _h2 import PREFACE
from _http_check import ResponseCheck, SentRequests
from hypothesis import event

# Reading the answer back -----------------------------------------------------------------------


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def closes(self) -> bool:
        return b"close" in self.headers.get(b"connection", b"").lower()


def parse_answers(data: bytes, *, partial: bool, methods: list[str]) -> list[Answer]:
    """The final responses in ``data`` (interim 1xx skipped), the k-th answering a request of
    method ``methods[k]`` when known (a response to HEAD has no body, an error response
    included). Unless ``partial``, ``data`` must be whole responses and nothing else."""
    answers: list[Answer] = []
    rest = bytes(data)
    while rest:
        head_request = len(answers) < len(methods) and methods[len(answers)] == "HEAD"
        parsed = _parse_one(rest, head_request)
        if parsed is None:
            assert partial, f"incomplete or malformed response bytes: {rest[:300]!r}"
            break
        answer, rest = parsed
        if answer.status >= 200:
            answers.append(answer)
    return answers


def _parse_one(data: bytes, head_request: bool) -> tuple[Answer, bytes] | None:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    version, status, _ = lines[0].split(b" ", 2)
    assert version == b"HTTP/1.1", lines[0]
    fields = (line.split(b": ", 1) for line in lines[1:])
    headers = {name.lower(): value for name, value in fields}
    rest = data[end + 4 :]
    code = int(status)
    length = int(headers.get(b"content-length", b"-1"))
    if head_request and code >= 400 and len(rest) == length:
        head_request = False  # refused before its head was parsed: the server could not tell
    if code < 200 or code in (204, 304) or head_request or headers.get(b"x-method") == b"HEAD":
        return Answer(code, headers, b""), rest
    if length >= 0:
        return (Answer(code, headers, rest[:length]), rest[length:]) if len(rest) >= length else None
    assert headers.get(b"transfer-encoding") != b"chunked", "echo bodies have a known length"
    return Answer(code, headers, rest), b""


# The invariants --------------------------------------------------------------------------------


def cut_off(example: Example, run: Run) -> bool:
    """Whether the client may have lost answers it was owed: it aborted, or it read through a
    lockstep stream (where a write waits for the reader) slowly enough for send_timeout. The
    pauses are summed in floats (ten of 0.3 s make 2.9999999999999996), so "enough" is as
    close as the MockClock's own sums can tell apart."""
    send_timeout = example.settings["send_timeout"]
    slow = example.lockstep and (run.read_slept >= send_timeout or math.isclose(run.read_slept, send_timeout))
    return example.finish == "abort" or slow


def check_prefix(example: Example, answers: list[Answer], partial: bool) -> None:
    """The requests before the cut are answered first, in order, each with its own echo."""
    prefix = example.prefix
    for position, (request, answer) in enumerate(zip(prefix, answers)):
        assert answer.status == 200, (position, answer)
        assert answer.headers[b"x-method"] == request.method.encode()
        assert answer.closes or request.keep_alive, (position, answer)
        if request.method != "HEAD":
            assert answer.body == request.echo, (position, answer.body, request.echo)
    if partial:
        return
    if len(answers) < len(prefix):
        last = len(answers) - 1
        assert answers and answers[-1].closes, f"{len(prefix)} requests, {len(answers)} answers"
        assert prefix[last].may_close_early, f"request {last} closed the connection early"


def check_ends(example: Example, answers: list[Answer], partial: bool) -> None:
    """Close is final; an error response closes; after a closing request, nothing; and an
    untouched stream gets exactly its answers."""
    for position, answer in enumerate(answers):
        if answer.status >= 400:
            assert answer.closes, answer
        if answer.closes:
            assert position == len(answers) - 1, f"answer {position} closes but {len(answers)} were sent"
    prefix = example.prefix
    if partial:
        return
    if example.untouched or (prefix and not prefix[-1].keep_alive):
        assert len(answers) <= len(prefix), f"{len(answers)} answers to {len(prefix)} requests"


def check_run(example: Example, run: Run) -> None:
    """The channel ended in bounded MockClock time, with no task and no warning left."""
    settings = example.settings
    timeouts = ("timeout", "header_timeout", "body_timeout", "send_timeout")
    bound = run.slept + max(settings[name] for name in timeouts)
    bound += settings["linger_timeout"] + 0.001
    assert run.served_until is not None
    assert run.served_until - run.served_from <= bound, (run.served_until - run.served_from, bound)
    assert run.handlers_started == run.handlers_ended
    assert run.connections_left == 0
    assert not run.warnings, [record.getMessage() for record in run.warnings]


@dataclasses.dataclass(frozen=True)
class Sent:
    """One request of the (damaged) stream as h11, an independent parser, reads it: its body
    is ``None`` when it is malformed or never ends."""

    method: str
    target: str
    body: bytes | None


def parse_requests(data: bytes) -> list[Sent]:
    """The requests h11 finds in ``data``, in order, until one it cannot read whole. A fresh
    ``h11.Connection`` per request (so that no response is needed to go on), and the empty
    lines before a request line skipped, as RFC 9112 section 2.2 lets a server do."""
    sent: list[Sent] = []
    while data:
        data = data.lstrip(b"\r\n")
        connection = h11.Connection(h11.SERVER)
        connection.receive_data(data)
        try:
            request = connection.next_event()
        except h11.RemoteProtocolError:
            break
        if not isinstance(request, h11.Request):
            break
        body: bytes | None = b""
        try:
            while not isinstance(event := connection.next_event(), h11.EndOfMessage):
                if not isinstance(event, h11.Data):
                    body = None
                    break
                body += event.data
        except h11.RemoteProtocolError:
            body = None
        sent.append(Sent(request.method.decode(), request.target.decode(), body))
        if body is None:
            break
        data = connection.trailing_data[0]
    return sent


def check_bodies(sent: list[Sent], run: Run, answers: list[Answer]) -> None:
    """What a handler took as a complete body is byte for byte a body the client sent (``sent``,
    as h11 reads the stream), and a request whose body is malformed never gets a 2xx from a
    handler that reads it first."""
    whole = collections.Counter((bare(request.target), request.body) for request in sent if request.body is not None)
    taken = collections.Counter((bare(target), body) for target, body in run.complete_bodies)
    assert not taken - whole, (taken - whole, sent)
    for position, answer in enumerate(answers):
        if answer.status >= 300 or answer.headers.get(b"x-method") == b"HEAD":
            continue
        assert position < len(sent), f"answer {position} is a {answer.status} to a request h11 cannot read"
        if sent[position].method == "HEAD":
            continue
        request = sent[position]
        if request.target.startswith("/n"):
            continue
        assert request.body is not None, f"answer {position} is a {answer.status} to a malformed body"
        echo = answer.body.partition(b"\n")
        assert (bare(echo[0].decode()), echo[2]) == (bare(request.target), request.body), (position, answer, request)


def bare(target: str) -> str:
    """``target`` without an empty query (``/a?`` is ``/a``): an ASGI scope cannot tell them
    apart (its ``query_string`` is empty for both)."""
    path, _, query = target.partition("?")
    return f"{path}?{query}" if query else path


def check_http(example: Example, run: Run) -> None:
    """Every answer to a stream that arrives as generated is valid HTTP/1.1 as h11 reads it, as
    the raw client checks the answers of the other wire tests. A damaged or stalled stream is
    left out: whether the server read a HEAD there, or timed out before its head was whole and
    answered as to a GET, depends on where the damage or the timer fell."""
    if not example.untouched:
        return
    sent = SentRequests()
    sent.write(example.stream)
    answers = ResponseCheck(sent)
    answers.read(bytes(run.received))
    answers.read_eof()


def check(example: Example, run: Run) -> None:
    if example.stream.startswith(PREFACE):
        # A damage inserted the HTTP/2 preface first (one of the INTERESTING snippets): the server rightly
        # speaks HTTP/2 (the HTTP/2 fuzzer checks that); only the run's invariants apply here.
        event("the damage opened the connection with the HTTP/2 preface")
        check_run(example, run)
        return
    partial = cut_off(example, run)
    sent = parse_requests(example.stream)
    answers = parse_answers(run.received, partial=partial, methods=[request.method for request in sent])
    event(f"finish: {example.finish}, {'untouched' if example.untouched else 'damaged or stalled'}")
    event(f"client cut off: {partial}")
    event(f"requests that must be answered: {min(len(example.prefix), 3)}{'+' if len(example.prefix) >= 3 else ''}")
    event(f"last status: {answers[-1].status if answers else None}")
    check_run(example, run)
    check_http(example, run)
    check_prefix(example, answers, partial)
    check_ends(example, answers, partial)
    check_bodies(sent, run, answers)
