"""The two ways the command line fails, each with its exit status: the person at the terminal
gets one line naming the cause, never a traceback."""

__all__ = ["CommandError", "UsageError"]


class UsageError(Exception):
    """The command line or the environment asks for something impossible (exit status 2)."""


class CommandError(Exception):
    """The server cannot run as asked: the app, a certificate, the address (exit status 1)."""
