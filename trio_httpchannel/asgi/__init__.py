"""Serve ASGI applications (Starlette, FastAPI, Quart-trio, ...) on :class:`HTTPChannel`::

from trio_httpchannel import serve
from trio_httpchannel.asgi import ASGIHandler, Lifespan

lifespan = Lifespan(app)
trio.run(partial(serve, ASGIHandler(app, state=lifespan.state), port=8000, lifespan=lifespan))
"""

from .._errors import ClientDisconnected
from .http import ASGI_VERSIONS, ASGIApp, ASGIHandler, as_asgi3
from .lifespan import Lifespan, LifespanError

__all__ = ["ASGI_VERSIONS", "ASGIApp", "ASGIHandler", "ClientDisconnected", "Lifespan", "LifespanError", "as_asgi3"]
