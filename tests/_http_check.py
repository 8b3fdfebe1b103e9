"""h11 reads every response the raw client reads, so that each wire test also proves the server's
answer is valid HTTP/1.1: the status line and header syntax, the framing (Content-Length, chunked
or the close), no body where the request or the status forbids one, and no byte after a response
that ends the connection.

h11's client side frames a response by the request it answers (a response to HEAD has no body, a
101 needs an Upgrade asked for), so the requests the test wrote are read too, by h11's server
side, and each is told to the client side, stripped to what framing depends on, just before the
bytes of its answer. A test that writes bytes h11 cannot read as a request (the bad input the
server must refuse) gets its answer framed as the server frames it: as an answer to GET (a head
that cannot be read has no method the server could know), then the close. The raw client keeps
its own reading; h11 must read the same status, headers and body from the same bytes.
"""

from __future__ import annotations

import re

import h11

_ANY_SIZE = 1 << 40
"""No size limit of h11's own: the server enforces its limits, this only judges the syntax."""


class _Asked:
    """A request as the response check needs it: the mirror for h11's client side, and the
    version the test wrote (a response to HTTP/1.0 must not be chunked)."""

    def __init__(
        self, method: bytes, target: bytes = b"/", *, version: bytes = b"1.1", close: bool, upgrade: bytes | None = None
    ) -> None:
        headers = [(b"host", b"mirror")]
        if upgrade is not None:
            headers += [(b"upgrade", upgrade), (b"connection", b"upgrade")]
        if close:
            headers.append((b"connection", b"close"))
        self.request = h11.Request(method=method, target=target, headers=headers)
        self.version = version


def _asked(request: h11.Request) -> _Asked:
    values = [value for name, value in request.headers if name == b"connection"]
    connection = {token.strip().lower() for value in values for token in value.split(b",")}
    persistent = b"close" not in connection and (request.http_version == b"1.1" or b"keep-alive" in connection)
    upgrade = next((value for name, value in request.headers if name == b"upgrade"), None)
    return _Asked(request.method, request.target, version=request.http_version, close=not persistent, upgrade=upgrade)


_REFUSED = _Asked(b"GET", close=True)
"""What the answer to bytes that are not a whole request is framed for: a GET's, since the server
cannot know the method of a head it cannot read (so even after ``HEAD`` its error has a body),
then the close that follows a refusal."""


_TE_LINE = re.compile(rb"(?im)^(transfer-encoding:[ \t]*)([-!#$%&'*+.^_`|~0-9a-z, \t]*?)([ \t]*\r?)$")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_PROXY_V2 = b"\r\n\r\n\x00\r\nQUIT\n"


def as_rfc_9110_reads_it(head: bytes) -> bytes:
    """``head`` with the empty elements of its Transfer-Encoding lists dropped: RFC 9110
    section 5.6.1 has a recipient ignore them, and we do; h11 refuses them."""

    def drop_empty(match: re.Match[bytes]) -> bytes:
        elements = (element.strip(b" \t") for element in match.group(2).split(b","))
        return match.group(1) + b", ".join(element for element in elements if element) + match.group(3)

    return _TE_LINE.sub(drop_empty, head)


def _without_proxy_header(data: bytes) -> bytes:
    """The connection's bytes after a PROXY protocol header (version 1 or 2) if they begin with one."""
    if data.startswith(b"PROXY ") and b"\r\n" in data:
        return data[data.index(b"\r\n") + 2 :]
    if data.startswith(_PROXY_V2) and len(data) >= 16:
        return data[16 + int.from_bytes(data[14:16], "big") :]
    return data


class SentRequests:
    """The requests a test wrote, in order, as h11's server side reads them. They are read only
    when an answer needs one (a test that floods the server reads none), each by a fresh parser
    (h11's server side would not go on to the next request before it sent a response).

    Where h11 is stricter than RFC 9112 lets a server be, and the server is not, the request is
    made into what the RFC reads it as first: the empty lines before a request line are skipped
    (section 2.2), the empty elements of a Transfer-Encoding list dropped (RFC 9110 section 5.6.1),
    and a PROXY protocol header before the first request is not HTTP at all."""

    def __init__(self) -> None:
        self._written = bytearray()
        self._begun = False
        self._parser = h11.Connection(h11.SERVER, max_incomplete_event_size=_ANY_SIZE)
        self._fresh = True
        self._lost = False

    def write(self, data: bytes) -> None:
        self._written += data

    def next(self) -> _Asked:
        """The request the next response answers. One that comes before a whole request did
        (a timeout's 408, a too-long head's 414 or 431, a refusal when the connection came)
        answers the bytes written so far; once the server refused bytes, nothing after them is
        read as a request, as the server does not either."""
        if self._lost:
            return _REFUSED
        if not self._begun:
            self._begun, self._written = True, bytearray(_without_proxy_header(bytes(self._written)))
        self._feed()
        while True:
            try:
                event = self._parser.next_event()
            except h11.RemoteProtocolError:
                event = h11.NEED_DATA
            if isinstance(event, h11.Request):
                return _asked(event)
            if isinstance(event, h11.EndOfMessage):
                self._written[:0] = self._parser.trailing_data[0]
                self._parser, self._fresh = h11.Connection(h11.SERVER, max_incomplete_event_size=_ANY_SIZE), True
                self._feed()
            elif event is h11.NEED_DATA or event is h11.PAUSED:
                self._lost = True
                return _REFUSED

    def _feed(self) -> None:
        """Give the parser what was written; a request's head as RFC 9112 reads it."""
        data, self._written = bytes(self._written), bytearray()
        if self._fresh:
            data = data.lstrip(b"\r\n")
            if end := _HEAD_END.search(data):
                data = as_rfc_9110_reads_it(data[: end.end()]) + data[end.end() :]
        if data:
            self._fresh = False
            self._parser.receive_data(data)


class ResponseCheck:
    """h11's client side, fed the bytes the raw client consumes, in order."""

    def __init__(self, sent: SentRequests) -> None:
        self._sent = sent
        self._reader = h11.Connection(h11.CLIENT, max_incomplete_event_size=_ANY_SIZE)
        self._version = b"1.1"
        self._ended = False
        self.events: list[h11.Event] = []
        """What h11 read since the raw client began its last head."""

    def read(self, data: bytes) -> None:
        if data and not self._done():
            self._reader.receive_data(data)
            self._drain()

    def read_eof(self) -> None:
        """The end of the stream. Within a response it is a cut (a server aborts so over memory
        streams), which the raw client's own reading reports; h11 need not say it again. Only
        bytes that cannot begin a status line are wrong there."""
        if self._done():
            return
        self._ended = True
        state = self._reader.their_state
        if state in (h11.IDLE, h11.SEND_RESPONSE):
            buffered = self._reader.trailing_data[0][:9]
            assert b"HTTP/1.1 ".startswith(buffered), (
                f"the stream ends in bytes that begin no status line: {buffered!r}"
            )
        self._reader.receive_data(b"")
        try:
            self._drain()
        except AssertionError:
            if state not in (h11.SEND_RESPONSE, h11.SEND_BODY):
                raise

    def _done(self) -> bool:
        return self._ended or self._reader.their_state is h11.SWITCHED_PROTOCOL

    def _drain(self) -> None:
        while True:
            if self._reader.our_state is h11.IDLE and self._reader.trailing_data[0]:
                asked = self._sent.next()
                self._version = asked.version
                self._reader.send(asked.request)
                self._reader.send(h11.EndOfMessage())
            try:
                event = self._reader.next_event()
            except h11.RemoteProtocolError as error:
                raise AssertionError(f"the server's response is not valid HTTP/1.1: {error}") from error
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            assert isinstance(event, h11.Event)
            if isinstance(event, (h11.Response, h11.InformationalResponse)):
                self._check_framing_fields(event)
            self.events.append(event)
            if isinstance(event, h11.ConnectionClosed):
                return
            if self._reader.our_state is h11.DONE and self._reader.their_state is h11.DONE:
                self._reader.start_next_cycle()

    def _check_framing_fields(self, head: h11.Response | h11.InformationalResponse) -> None:
        """The rules of RFC 9112 section 6 that h11 does not hold a response to."""
        names = [name for name, _ in head.headers]
        status = head.status_code
        assert not (b"content-length" in names and b"transfer-encoding" in names), f"both framings: {head}"
        if status < 200 or status == 204:
            assert b"content-length" not in names and b"transfer-encoding" not in names, (
                f"framing fields on a {status}: {head}"
            )
        if self._version != b"1.1":
            assert b"transfer-encoding" not in names, (
                f"Transfer-Encoding in an answer to HTTP/{self._version.decode()}: {head}"
            )

    def expect_head(self) -> None:
        """The raw client begins to read a head: what h11 read before it is checked already."""
        self.events.clear()

    def agree_on_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        """The head the raw client just read is the one h11 read from the same bytes."""
        assert self.events and isinstance(self.events[0], (h11.Response, h11.InformationalResponse)), (
            f"h11 does not read a head where the raw client read {status}: {self.events}"
        )
        head = self.events[0]
        assert (head.status_code, head.reason, list(head.headers.raw_items())) == (status, reason, headers), head

    def agree_on_body(self, body: bytes, trailers: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006 (never changed)
        """The body the raw client just read is the whole body h11 read after the head, and so
        are the trailers after it."""
        data = b"".join(bytes(event.data) for event in self.events if isinstance(event, h11.Data))
        ends = [event for event in self.events if isinstance(event, h11.EndOfMessage)]
        assert ends, f"h11 has not read this response to its end: {self.events}"
        assert data == body, f"h11 reads a body of {len(data)} bytes where the raw client read {len(body)}"
        h11_trailers = [(name, value) for name, value in ends[0].headers.raw_items()]
        assert h11_trailers == trailers, f"h11 reads the trailers {h11_trailers} where the raw client read {trailers}"
