"""The forms of a request-target (RFC 9112 section 3.2) over the wire: what a handler and an ASGI
app see for each, and the 400 for a target in none of them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from trio_httpchannel import Request, Response
from trio_httpchannel.asgi import ASGIHandler


async def describe(request: Request) -> Response:
    """Answers ``path|query|target|host``."""
    fields = [request.path, request.query, request.target, request.headers.get("host", "-")]
    return Response(200, [], "|".join(fields).encode())


async def test_absolute_form_target_is_served_by_its_path_and_authority(serve):
    client = await (await serve(describe))()
    await client.send(b"GET http://example.com/a%20b?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n")
    response = await client.read_response()
    assert (response.status, response.body) == (200, b"/a%20b|q=1|http://example.com/a%20b?q=1|example.com")


async def test_absolute_form_target_with_an_empty_path_has_path_slash(serve):
    client = await (await serve(describe))()
    await client.send(b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert (await client.read_response()).body == b"/||http://example.com|example.com"


async def test_absolute_form_reaches_an_asgi_app_as_path_query_and_host(serve):
    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    client = await (await serve(ASGIHandler(app)))()
    await client.send(b"GET http://example.com:8080/a%20b?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n")
    assert (await client.read_response()).status == 204
    (scope,) = scopes
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/a b", b"/a%20b", b"q=1")
    assert scope["headers"] == [(b"host", b"example.com:8080")]


def url_echo() -> Starlette:
    async def where(request: StarletteRequest) -> JSONResponse:
        url = request.url
        return JSONResponse({"host": url.netloc, "path": url.path, "q": request.query_params["q"]})

    return Starlette(routes=[Route("/a b", where)])


async def test_client_speaking_to_a_proxy_is_served_by_starlette(serve_asgi):
    """httpx sends the absolute-form to a proxy; served as an origin server, the request
    reaches the route of its path, and Starlette's URL has the host the client named."""
    url = await serve_asgi(url_echo())
    async with httpx.AsyncClient(proxy=url) as client:
        response = await client.get("http://example.com/a%20b?q=1")
    assert response.status_code == 200
    assert response.json() == {"host": "example.com", "path": "/a b", "q": "1"}


TARGETS_IN_NO_FORM = {
    "a bare word": b"GET foo HTTP/1.1",
    "asterisk-form for get": b"GET * HTTP/1.1",
    "authority-form for get": b"GET example.com:80 HTTP/1.1",
    "absolute-form of another scheme": b"GET ftp://example.com/ HTTP/1.1",
    "absolute-form with userinfo": b"GET http://user@example.com/ HTTP/1.1",
}


@pytest.mark.parametrize("request_line", TARGETS_IN_NO_FORM.values(), ids=TARGETS_IN_NO_FORM.keys())
async def test_target_in_none_of_the_forms_gets_400_then_close(serve, request_line):
    client = await (await serve(describe))()
    await client.send(request_line + b"\r\nHost: x\r\n\r\n")
    response = await client.read_response()
    assert response.status == 400
    assert b"request-target" in response.body
    assert response.header("connection") == "close"
    assert await client.read_to_eof() == b""


async def test_asterisk_form_options_is_served(serve):
    client = await (await serve(describe))()
    await client.send(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await client.read_response()).body == b"*||*|x"
