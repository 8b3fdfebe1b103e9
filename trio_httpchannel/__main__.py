"""``python -m trio_httpchannel``: the command line, the same as the ``trio-httpchannel`` script."""

from .server.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
