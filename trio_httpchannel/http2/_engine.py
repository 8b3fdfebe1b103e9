"""The h2 connection object as this server configures it, and the one frame h2 cannot send.

Where h2's own behaviour would break a rule we keep, it is configured around, here and only
here:

- h2 treats a stream over SETTINGS_MAX_CONCURRENT_STREAMS as a connection error
  (``TooManyStreamsError``: GOAWAY, every stream lost); RFC 9113 section 5.1.2 makes it a
  stream error. So SETTINGS advertises our limit, while h2 is left a ceiling it never reaches:
  the connection refuses the stream over the limit itself, with REFUSED_STREAM.
- h2 checks request headers only as connection errors: its inbound validation is off, and
  ``_head.py`` checks them per stream. Outbound validation is off too: ``_head.py`` builds the
  response fields from a checked :class:`Response`.
- h2 applies SETTINGS_MAX_HEADER_LIST_SIZE to its HPACK decoder only once the client has
  acknowledged it; it is applied from the first frame.
- h2 cannot send a GOAWAY and go on serving the streams below it (its state machine closes at
  once, python-hyper/h2#1181): a graceful GOAWAY is serialized here, outside h2's state.
- h2 answers DATA that arrives on a stream it has reset (refused, say) with another
  RST_STREAM (STREAM_CLOSED); RFC 9113 section 5.1 wants such frames, which the client sent
  before it saw our reset, ignored. The connection's window is still credited for them.
"""

from __future__ import annotations

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import Event
from h2.exceptions import StreamClosedError
from h2.settings import SettingCodes, Settings
from h2.stream import StreamClosedBy
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, RstStreamFrame

from .._config import Settings as ChannelSettings

__all__ = ["goaway", "new_engine"]

_DEFAULT_WINDOW = 65535
_MAX_WINDOW = 2**31 - 1
_CEILING = 2**31 - 1


def new_engine(
    settings: ChannelSettings, *, upgrade_settings: bytes | None = None, connect_protocol: bool = False
) -> H2Connection:
    """A server-side h2 connection, its SETTINGS and the connection window queued to send.

    ``upgrade_settings`` is the client's ``HTTP2-Settings`` header of an ``Upgrade: h2c``
    request: stream 1 then exists, its request complete. ``connect_protocol`` advertises
    SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441: WebSockets over extended CONNECT); h2 itself
    does nothing with it (``_head.py`` accepts ``:protocol`` only then).
    """
    engine = _Engine(
        H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=False,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
    )
    engine.local_settings = _local_settings(settings, settings.h2_max_concurrent_streams, connect_protocol)
    if upgrade_settings is None:
        engine.initiate_connection()
    else:
        engine.initiate_upgrade_connection(upgrade_settings)
    engine.local_settings = _local_settings(settings, _CEILING, connect_protocol)
    engine.decoder.max_header_list_size = settings.h2_max_header_list_size
    window = min(_MAX_WINDOW, settings.h2_initial_window_size * settings.h2_max_concurrent_streams)
    if window > _DEFAULT_WINDOW:
        engine.increment_flow_control_window(window - _DEFAULT_WINDOW)
    return engine


class _Engine(H2Connection):
    """h2's connection, silent about DATA on a stream it reset (see the module's notes)."""

    def _handle_data_on_closed_stream(
        self, events: list[Event], exc: StreamClosedError, frame: DataFrame
    ) -> tuple[list[Frame], list[Event]]:
        already_reset = not exc._events  # h2 hangs a StreamReset on the error only as it resets now
        frames, events = super()._handle_data_on_closed_stream(events, exc, frame)
        if already_reset and self._stream_closed_by(frame.stream_id) is StreamClosedBy.SEND_RST_STREAM:
            frames = [sent for sent in frames if not isinstance(sent, RstStreamFrame)]
        return frames, events


def _local_settings(settings: ChannelSettings, max_streams: int, connect_protocol: bool) -> Settings:
    return Settings(
        client=False,
        initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: max_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: settings.h2_max_header_list_size,
            SettingCodes.INITIAL_WINDOW_SIZE: settings.h2_initial_window_size,
            SettingCodes.ENABLE_CONNECT_PROTOCOL: int(connect_protocol),
        },
    )


def goaway(last_stream_id: int, error_code: ErrorCodes = ErrorCodes.NO_ERROR) -> bytes:
    """A GOAWAY frame, for a graceful shutdown that lets the streams up to ``last_stream_id``
    finish (h2 is not told: it would stop serving them)."""
    frame = GoAwayFrame(0)
    frame.last_stream_id = last_stream_id
    frame.error_code = error_code
    return frame.serialize()
