"""Files as response bodies: ``http.response.pathsend`` (Starlette's ``FileResponse`` uses it when
the scope advertises it) and the native ``FileBody``. On a plain socket the kernel copies the file
(``os.sendfile``, counted here by a spy); over TLS and memory streams it is read and sent in chunks.
Clients: httpx, curl, and the raw client (h11 re-reads every response)."""

from __future__ import annotations

import functools
import hashlib
import os
import random
import re
import shutil
import ssl
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trustme
from conftest import GET, get
from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Route

from trio_httpchannel import FileBody, HTTPChannel, Request, Response, ResponseRecord
from trio_httpchannel.asgi import ASGIHandler

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(
    CURL is None, reason="curl is not installed (scripts/test installs it with apt-get when run as root)"
)
BIG = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 MB of random bytes (a misplaced offset shows), written once for the module."""
    path = tmp_path_factory.mktemp("files") / "big.bin"
    path.write_bytes(random.Random(17).randbytes(BIG))
    return path


@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.txt"
    path.write_bytes(b"0123456789" * 1000)
    return path


@pytest.fixture
def sendfile_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bytes each ``os.sendfile`` call copied."""
    copied: list[int] = []
    real = os.sendfile

    def spy(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        sent = real(out_fd, in_fd, offset, count)
        copied.append(sent)
        return sent

    monkeypatch.setattr(os, "sendfile", spy)
    return copied


@pytest.fixture
def serve_tls(nursery: trio.Nursery) -> Any:
    """``port, client_context = await serve_tls(app)``: ``app`` through ``ASGIHandler`` over TLS
    on a loopback port, with a throwaway certificate the client context trusts."""

    async def start(app: Any) -> tuple[int, ssl.SSLContext]:
        authority = trustme.CA()
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1").configure_cert(server_context)
        channel = HTTPChannel(ASGIHandler(app))
        serve = functools.partial(trio.serve_ssl_over_tcp, channel, 0, server_context, host="127.0.0.1")
        listeners = await nursery.start(serve)
        client_context = ssl.create_default_context()
        authority.configure_trust(client_context)
        return listeners[0].transport_listener.socket.getsockname()[1], client_context

    return start


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def starlette_files(directory: Path, messages: list[str]) -> Any:
    """Starlette serving ``directory``'s files with ``FileResponse``; ``messages`` records the
    type of every message the app sends."""

    async def file(request: Any) -> FileResponse:
        return FileResponse(directory / request.path_params["name"])

    app = Starlette(routes=[Route("/files/{name}", file)])

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        async def send_recorded(message: Any) -> None:
            if scope["type"] == "http":
                messages.append(message["type"])
            await send(message)

        await app(scope, receive, send_recorded)

    return recording


def pathsend(path: str | Path, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers or []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    return app


async def read_streamed(url: str, **client_options: Any) -> tuple[httpx.Response, str, int]:
    """GET ``url`` with httpx, the body hashed as it streams in (never held whole)."""
    digest = hashlib.sha256()
    size = 0
    async with httpx.AsyncClient(timeout=60, **client_options) as client:
        async with client.stream("GET", url) as response:
            async for data in response.aiter_raw():
                digest.update(data)
                size += len(data)
    return response, digest.hexdigest(), size


async def test_starlette_file_response_sends_50_mb_by_sendfile_byte_for_byte(serve_asgi, big_file, sendfile_bytes):
    messages: list[str] = []
    url = await serve_asgi(starlette_files(big_file.parent, messages))
    response, digest, size = await read_streamed(f"{url}/files/big.bin")
    assert response.status_code == 200 and response.headers["content-length"] == str(BIG)
    assert (size, digest) == (BIG, sha256(big_file.read_bytes()))
    assert messages == ["http.response.start", "http.response.pathsend"]
    assert sum(sendfile_bytes) == BIG


@needs_curl
async def test_curl_reads_the_whole_file_served_by_pathsend(serve_asgi, big_file, tmp_path, sendfile_bytes):
    url = await serve_asgi(starlette_files(big_file.parent, []))
    out = tmp_path / "out.bin"
    assert CURL is not None
    done = await trio.run_process(
        [CURL, "-sS", "--fail", "-o", str(out), "-w", "%{http_code} %{size_download}", f"{url}/files/big.bin"],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == f"200 {BIG}"
    assert sha256(out.read_bytes()) == sha256(big_file.read_bytes())
    assert sum(sendfile_bytes) == BIG


async def test_over_tls_the_file_is_read_and_sent_in_chunks(serve_tls, big_file, sendfile_bytes):
    port, client_context = await serve_tls(starlette_files(big_file.parent, []))
    response, digest, size = await read_streamed(f"https://127.0.0.1:{port}/files/big.bin", verify=client_context)
    assert response.status_code == 200 and response.headers["content-length"] == str(BIG)
    assert (size, digest) == (BIG, sha256(big_file.read_bytes()))
    assert sendfile_bytes == []


async def test_the_file_goes_whole_over_sockets_and_memory_streams(serve, small_file):
    client = await (await serve(ASGIHandler(pathsend(small_file, [(b"content-type", b"text/plain")]))))()
    await client.send(GET + GET)
    for _ in range(2):
        response = await client.read_response()
        assert response.status == 200
        assert response.header("content-length") == "10000" and response.header("content-type") == "text/plain"
        assert response.body == small_file.read_bytes()


async def test_http_1_0_gets_the_file_with_its_content_length(serve, small_file):
    client = await (await serve(ASGIHandler(pathsend(small_file))))()
    await client.send(b"GET / HTTP/1.0\r\n\r\n")
    response = await client.read_response()
    assert response.header("content-length") == "10000" and response.body == small_file.read_bytes()


async def test_head_sends_the_length_and_no_body(serve, small_file):
    client = await (await serve(ASGIHandler(pathsend(small_file))))()
    await client.send(get(method="HEAD") + GET)
    head = await client.read_response(head_request=True)
    assert head.header("content-length") == "10000" and head.body == b""
    assert (await client.read_response()).body == small_file.read_bytes()


async def test_a_missing_file_is_a_500_before_anything_is_sent(serve, tmp_path, caplog):
    client = await (await serve(ASGIHandler(pathsend(tmp_path / "missing.bin"))))()
    await client.send(GET)
    response = await client.read_response()
    assert response.status == 500
    assert [r.levelname for r in caplog.records if r.levelname == "ERROR"] == ["ERROR"]


async def test_a_directory_is_a_500_before_anything_is_sent(serve, tmp_path):
    client = await (await serve(ASGIHandler(pathsend(tmp_path))))()
    await client.send(GET)
    assert (await client.read_response()).status == 500


async def test_a_relative_path_is_a_500(serve, small_file):
    client = await (await serve(ASGIHandler(pathsend(small_file.name))))()
    await client.send(GET)
    assert (await client.read_response()).status == 500


async def test_pathsend_is_advertised_for_every_http_version(serve, small_file):
    extensions: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        extensions.append(scope["extensions"])
        await pathsend(small_file)(scope, receive, send)

    client = await (await serve(ASGIHandler(app)))()
    await client.send(GET)
    await client.read_response()
    client = await (await serve(ASGIHandler(app)))()
    await client.send(b"GET / HTTP/1.0\r\n\r\n")
    await client.read_response()
    assert ["http.response.pathsend" in names for names in extensions] == [True, True]


async def test_a_file_removed_before_its_response_is_sent_is_a_500(serve, small_file):
    async def handler(request: Request) -> Response:
        body = FileBody(small_file)
        small_file.unlink()
        return Response(200, [], body)

    client = await (await serve(handler))()
    await client.send(GET)
    assert (await client.read_response()).status == 500


async def test_a_file_that_shrank_is_cut_never_sent_short_as_if_whole(serve, small_file):
    async def handler(request: Request) -> Response:
        body = FileBody(small_file)
        small_file.write_bytes(b"short")
        return Response(200, [], body)

    client = await (await serve(handler))()
    await client.send(GET)
    head = await client.read_head()
    assert head.header("content-length") == "10000"
    assert await client.read_to_eof() == b"short"


async def test_a_native_response_sends_a_file_body(serve, small_file):
    async def handler(request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, FileBody(small_file))

    client = await (await serve(handler))()
    await client.send(GET)
    response = await client.read_response()
    assert response.header("content-length") == "10000" and response.body == small_file.read_bytes()


def test_file_body_checks_the_file_when_made(tmp_path):
    with pytest.raises(FileNotFoundError):
        FileBody(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        FileBody(tmp_path)


async def test_a_client_that_never_reads_is_aborted_at_send_timeout(serve_tcp, big_file, autojump_clock):
    """The kernel's copy waits for the socket like any write: a client that stops reading is
    waited for ``send_timeout``, then the connection is aborted (the rest of the file unsent)."""
    client = await (await serve_tcp(ASGIHandler(pathsend(big_file)), send_timeout=7))()
    await client.send(GET)
    start = trio.current_time()
    await trio.sleep(100)
    received = len(await client.read_to_eof())
    assert 0 < received < BIG
    assert start + 7 <= trio.current_time()


async def test_http2_reads_and_sends_the_file_in_frames(serve_h2, tmp_path):
    path = tmp_path / "medium.bin"
    path.write_bytes(random.Random(2).randbytes(1_000_000))
    server = await serve_h2(ASGIHandler(pathsend(path)))
    client = await server.connect()
    response = await client.get("/")
    assert response.header("content-length") == "1000000" and bytes(response.body) == path.read_bytes()
    head = await client.get("/", method="HEAD")
    assert head.header("content-length") == "1000000" and bytes(head.body) == b""


async def test_http2_a_file_removed_before_it_is_sent_is_a_500(serve_h2, small_file):
    async def handler(request: Request) -> Response:
        body = FileBody(small_file)
        small_file.unlink()
        return Response(200, [], body)

    server = await serve_h2(handler)
    client = await server.connect()
    assert (await client.get("/")).status == 500


def test_a_file_body_takes_no_trailers(small_file):
    with pytest.raises(ValueError, match="no room for trailers"):
        Response(200, [], FileBody(small_file), trailers=[])


async def read_response_counting(stream: trio.abc.Stream) -> int:
    """Read one response with a Content-Length off ``stream``, keeping nothing of its body: the
    bytes of the body read."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = await stream.receive_some(65536)
        assert data, f"the stream ended in the head: {head!r}"
        head += data
    head, _, received = head.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: (\d+)", head)[1])  # type: ignore[index]
    total = len(received)
    while total < length:
        data = await stream.receive_some(65536)
        assert data, f"the stream ended {length - total} bytes short"
        total += len(data)
    return total


async def served_with_traced_peak(stream: trio.abc.Stream) -> tuple[int, int]:
    """Ask for the file on ``stream`` and read it all while tracemalloc runs: the bytes of the
    body read and the peak of Python's memory, client and server together."""
    tracemalloc.start()
    try:
        await stream.send_all(GET)
        received = await read_response_counting(stream)
        return received, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_memory_stays_flat_while_50_mb_go_out_by_sendfile(nursery, big_file, sendfile_bytes):
    channel = HTTPChannel(ASGIHandler(pathsend(big_file)))
    listeners = await nursery.start(functools.partial(trio.serve_tcp, channel, 0, host="127.0.0.1"))
    stream = await trio.open_tcp_stream("127.0.0.1", listeners[0].socket.getsockname()[1])
    received, peak = await served_with_traced_peak(stream)
    assert received == BIG and sum(sendfile_bytes) == BIG
    assert peak < 1024 * 1024


async def test_memory_stays_flat_while_50_mb_go_out_over_tls_in_chunks(serve_tls, big_file, sendfile_bytes):
    port, client_context = await serve_tls(pathsend(big_file))
    stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=client_context)
    received, peak = await served_with_traced_peak(stream)
    assert received == BIG and sendfile_bytes == []
    assert peak < 2 * 1024 * 1024


async def test_the_access_record_counts_every_byte_of_the_file(nursery, serve_tcp, big_file):
    records: list[ResponseRecord] = []
    client = await (await serve_tcp(ASGIHandler(pathsend(big_file)), on_response=records.append))()
    await client.send(GET)
    head = await client.read_head()
    assert head.header("content-length") == str(BIG)
    assert len(await client.read_exactly(BIG)) == BIG
    await client.send(GET)
    await client.read_head()
    (record,) = records
    assert record.complete and record.sent > BIG


@needs_curl
async def test_curl_over_http2_reads_the_whole_file_and_its_early_hint(serve_h2_tcp, big_file, tmp_path):
    """curl (nghttp2) with prior knowledge: the 103 first, then 50 MB in DATA frames, whole."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]})
        await pathsend(big_file)(scope, receive, send)

    server = await serve_h2_tcp(ASGIHandler(app))
    out, heads = tmp_path / "out.bin", tmp_path / "heads.txt"
    assert CURL is not None
    done = await trio.run_process(
        [CURL, "-sS", "--http2-prior-knowledge", "-D", str(heads), "-o", str(out), f"http://127.0.0.1:{server.port}/"],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    hint, final = heads.read_bytes().split(b"\r\n\r\n")[:2]
    assert [line.strip() for line in hint.split(b"\r\n")] == [b"HTTP/2 103", b"link: </a.css>; rel=preload"]
    assert final.startswith(b"HTTP/2 200") and f"content-length: {BIG}".encode() in final
    assert sha256(out.read_bytes()) == sha256(big_file.read_bytes())


async def test_an_empty_file_is_an_empty_body(serve, tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    client = await (await serve(ASGIHandler(pathsend(empty))))()
    await client.send(GET + GET)
    for _ in range(2):
        response = await client.read_response()
        assert (response.status, response.header("content-length"), response.body) == (200, "0", b"")
