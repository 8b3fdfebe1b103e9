"""Settings are validated at construction, with messages that name the setting."""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest

from trio_httpchannel import HTTPChannel, Response, Settings
from trio_httpchannel._config import SettingsKeywords


async def handler(request):
    return Response(200)


@pytest.mark.parametrize(
    "setting, value",
    [
        ("max_pipeline", 0),
        ("timeout", -1),
        ("header_timeout", 0),
        ("body_timeout", math.nan),
        ("linger_timeout", "20"),
        ("max_header_length", 10),
        ("max_request_line", 1.5),
        ("max_header_count", 0),
        ("max_body_size", -1),
        ("max_discard", True),
        ("ws_max_size", 0),
        ("ws_max_queue", 0),
        ("ws_ping_interval", 0),
        ("ws_ping_timeout", -5),
        ("ws_per_message_deflate", "yes"),
        ("ws_close_timeout", None),
        ("h2", "yes"),
        ("h2_max_concurrent_streams", 0),
        ("h2_max_concurrent_streams", 2**32),
        ("h2_max_header_list_size", 100),
        ("h2_initial_window_size", 65534),
        ("h2_initial_window_size", 2**31),
        ("h2_max_resets_per_second", 0),
        ("h2_max_control_frames_per_second", 2.5),
    ],
)
def test_bad_setting_raises_value_error_naming_it(setting, value):
    with pytest.raises(ValueError, match=setting):
        HTTPChannel(handler, **{setting: value})


def test_request_line_limit_may_not_exceed_head_limit():
    with pytest.raises(ValueError, match="max_request_line"):
        Settings(max_header_length=1000, max_request_line=2000)


def test_unknown_setting_is_a_type_error():
    with pytest.raises(TypeError):
        HTTPChannel(handler, max_pipelin=3)


def test_infinite_timeouts_are_allowed():
    assert HTTPChannel(handler, timeout=math.inf).settings.timeout == math.inf


def test_websocket_keepalive_may_be_disabled():
    settings = Settings(ws_ping_interval=None, ws_ping_timeout=None)
    assert (settings.ws_ping_interval, settings.ws_ping_timeout) == (None, None)


def test_websocket_defaults_are_the_documented_ones():
    settings = Settings()
    assert settings.ws_max_size == 16 * 1024 * 1024
    assert (settings.ws_max_queue, settings.ws_ping_interval, settings.ws_ping_timeout) == (32, 20.0, 20.0)
    assert (settings.ws_per_message_deflate, settings.ws_close_timeout) == (True, 10.0)


def test_the_keywords_of_http_channel_are_exactly_the_settings_fields_with_their_types():
    """``SettingsKeywords`` types ``HTTPChannel(**settings)``; a field added to one and not the
    other, or typed differently, fails here."""
    assert typing.get_type_hints(SettingsKeywords) == typing.get_type_hints(Settings)
    assert list(SettingsKeywords.__annotations__) == [field.name for field in dataclasses.fields(Settings)]
