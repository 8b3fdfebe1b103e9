"""``python -m trio_httpchannel``: serve the demo app on 127.0.0.1:8000."""

from __future__ import annotations

import logging
from functools import partial

import trio

from ._channel import HTTPChannel
from ._demo import demo


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("trio_httpchannel").info("serving the demo app on http://127.0.0.1:8000")
    try:
        trio.run(partial(trio.serve_tcp, HTTPChannel(demo), 8000, host="127.0.0.1"))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
