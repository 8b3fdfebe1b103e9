"""``103 Early Hints`` (``http.response.early_hint``): the Link fields go out before the final
response over HTTP/1.1 (read by the raw client and h11, and by curl) and HTTP/2 (h2's client),
never to an HTTP/1.0 client, and never out of order behind a response not yet written."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
import trio
from conftest import GET, get

from trio_httpchannel.asgi import ASGIHandler

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(
    CURL is None, reason="curl is not installed (scripts/test installs it with apt-get when run as root)"
)
LINKS = [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]


def hinting(links: list[Any] = LINKS, seen: list[Any] | None = None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if seen is not None:
            seen.append("http.response.early_hint" in scope["extensions"])
        await send({"type": "http.response.early_hint", "links": links})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b"<html>"})

    return app


async def test_the_links_go_out_in_a_103_before_the_response(serve):
    client = await (await serve(ASGIHandler(hinting())))()
    for _ in range(2):
        await client.send(GET)
        response = await client.read_response()
        (hint,) = response.informational
        assert (hint.status, hint.reason) == (103, b"Early Hints")
        assert hint.headers == [(b"link", link) for link in LINKS]
        assert (response.status, response.body) == (200, b"<html>")


async def test_an_http_1_0_client_gets_no_103_and_no_extension(serve):
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append("http.response.early_hint" in scope["extensions"])
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"x"})

    client = await (await serve(ASGIHandler(app)))()
    await client.send(b"GET / HTTP/1.0\r\n\r\n")
    response = await client.read_response()
    assert response.informational == [] and response.body == b"x" and seen == [False]


async def test_an_early_hint_to_an_http_1_0_client_fails_the_app(serve):
    client = await (await serve(ASGIHandler(hinting())))()
    await client.send(b"GET / HTTP/1.0\r\n\r\n")
    response = await client.read_response()
    assert response.status == 500 and response.informational == []


async def test_a_hint_behind_an_unwritten_response_is_dropped(serve):
    """The second request's app hints while the first's answer is not written: its 103 cannot
    go ahead of that answer, so it is dropped; both answers arrive whole, in order."""
    first_may_answer = trio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await first_may_answer.wait()
        else:
            await send({"type": "http.response.early_hint", "links": LINKS})
            first_may_answer.set()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    client = await (await serve(ASGIHandler(app)))()
    await client.send(get("/slow") + get("/fast"))
    slow, fast = await client.read_response(), await client.read_response()
    assert (slow.body, slow.informational, fast.body, fast.informational) == (b"/slow", [], b"/fast", [])


@pytest.mark.parametrize("link", [b"</a>\r\nSet-Cookie: x=1", b"", b"</a>; rel=preload\x00"])
async def test_a_link_that_cannot_be_sent_fails_the_app_before_anything_is_sent(serve, link):
    client = await (await serve(ASGIHandler(hinting([link]))))()
    await client.send(GET)
    response = await client.read_response()
    assert response.status == 500 and response.informational == []


async def test_a_hint_after_the_response_began_fails_the_app(serve):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.early_hint", "links": LINKS})

    client = await (await serve(ASGIHandler(app)))()
    await client.send(GET)
    await client.read_head()
    with pytest.raises(EOFError):
        await client.read_chunked()


@needs_curl
async def test_curl_shows_the_103_and_its_links(serve_asgi):
    url = await serve_asgi(hinting())
    assert CURL is not None
    done = await trio.run_process([CURL, "-sS", "-i", url], capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr
    hint, final, body = done.stdout.split(b"\r\n\r\n")
    assert hint.split(b"\r\n") == [b"HTTP/1.1 103 Early Hints", *(b"link: " + link for link in LINKS)]
    assert final.startswith(b"HTTP/1.1 200 OK\r\n") and body == b"<html>"


async def test_http2_sends_the_103_as_informational_headers(serve_h2):
    seen: list[Any] = []
    server = await serve_h2(ASGIHandler(hinting(seen=seen)))
    client = await server.connect()
    response = await client.get("/")
    assert response.informational == [[(b":status", b"103"), *((b"link", link) for link in LINKS)]]
    assert (response.status, bytes(response.body), seen) == (200, b"<html>", [True])


async def test_a_hint_before_the_body_is_read_goes_before_100_continue(serve):
    """A client that waits for ``100 Continue`` gets the hint first, then the 100 once the app
    reads the body, then the answer: two informational heads, in the order they were sent."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.early_hint", "links": LINKS[:1]})
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": body})

    client = await (await serve(ASGIHandler(app)))()
    await client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    hint = await client.read_head()
    assert (hint.status, hint.headers) == (103, [(b"link", LINKS[0])])
    assert (await client.read_head()).status == 100
    await client.send(b"ping")
    response = await client.read_response()
    assert (response.status, response.body) == (200, b"ping")
