"""The Twisted reference server: twisted.web serving the benchmark's hello-world natively.

Usage: ``python -m bench.twisted_server PORT`` from the repository. Listens on 127.0.0.1:PORT
with the default reactor and no access log; ``/sleep`` answers after ``bench.apps.SLEEP``
seconds without blocking.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet import task
from twisted.web import http, resource, server

from bench.apps import BODY, SLEEP

reactor: Any = _reactor
"""The global reactor, which Twisted's stubs type as a module."""


class Hello(resource.Resource):
    """Every path is this leaf: the 13-byte text/plain body with its Content-Length (which
    Twisted adds itself only to bodies returned at once), later for ``/sleep``."""

    isLeaf = True

    def render_GET(self, request: server.Request) -> bytes | int:
        request.setHeader(b"content-type", b"text/plain")
        request.setHeader(b"content-length", b"%d" % len(BODY))
        if request.path != b"/sleep":
            return BODY
        task.deferLater(reactor, SLEEP, finish, request)
        return server.NOT_DONE_YET


def finish(request: server.Request) -> None:
    """Send the body of a deferred ``/sleep`` response."""
    request.write(BODY)
    request.finish()


class QuietSite(server.Site):
    """A Site that writes no access log line."""

    def log(self, request: http.Request) -> None:
        pass


def main() -> None:
    """Listen on the port given as the only argument and run the reactor."""
    reactor.listenTCP(int(sys.argv[1]), QuietSite(Hello()), interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
