"""The command line's parsing, app loading and interface detection, in process."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from trio_httpchannel import HTTPChannel, Request, Response, Settings
from trio_httpchannel.server.app_loading import interface_of, load_app
from trio_httpchannel.server.errors import CommandError, UsageError
from trio_httpchannel.server.options import parse_options

SETTING_OPTIONS = {
    "--timeout": ("timeout", "3.5", 3.5),
    "--header-timeout": ("header_timeout", "4", 4.0),
    "--body-timeout": ("body_timeout", "5", 5.0),
    "--send-timeout": ("send_timeout", "5.5", 5.5),
    "--linger-timeout": ("linger_timeout", "6", 6.0),
    "--max-pipeline": ("max_pipeline", "7", 7),
    "--max-header-length": ("max_header_length", "9000", 9000),
    "--max-request-line": ("max_request_line", "800", 800),
    "--max-header-count": ("max_header_count", "12", 12),
    "--max-body-size": ("max_body_size", "13", 13),
    "--ws-max-size": ("ws_max_size", "1000", 1000),
    "--ws-max-queue": ("ws_max_queue", "3", 3),
    "--ws-ping-interval": ("ws_ping_interval", "2.5", 2.5),
    "--ws-ping-timeout": ("ws_ping_timeout", "off", None),
    "--ws-per-message-deflate": ("ws_per_message_deflate", "off", False),
    "--ws-close-timeout": ("ws_close_timeout", "3", 3.0),
    "--h2-max-concurrent-streams": ("h2_max_concurrent_streams", "14", 14),
    "--h2-max-header-list-size": ("h2_max_header_list_size", "15000", 15000),
    "--h2-initial-window-size": ("h2_initial_window_size", "160000", 160000),
    "--h2-max-resets-per-second": ("h2_max_resets_per_second", "17", 17),
    "--h2-max-control-frames-per-second": ("h2_max_control_frames_per_second", "18", 18),
}
SWITCH_SETTINGS = {"h2"}
"""Settings that are switches (``--h2``/``--no-h2``), tested on their own below."""


@pytest.mark.parametrize("flag", sorted(SETTING_OPTIONS))
def test_every_limit_option_reaches_the_channel(flag: str) -> None:
    name, text, value = SETTING_OPTIONS[flag]
    options = parse_options(["app:x", flag, text], {})
    assert getattr(HTTPChannel(handler, **options.settings).settings, name) == value


@pytest.mark.parametrize("flag", sorted(SETTING_OPTIONS))
def test_every_limit_option_has_an_environment_variable(flag: str) -> None:
    name, text, value = SETTING_OPTIONS[flag]
    options = parse_options([], {"TRIO_HTTPCHANNEL_" + name.upper(): text})
    assert options.settings == {name: value}


def test_every_setting_but_max_discard_is_an_option() -> None:
    names = {field.name for field in dataclasses.fields(Settings)} - {"max_discard"}
    assert names == {name for name, _, _ in SETTING_OPTIONS.values()} | SWITCH_SETTINGS


def test_h2_is_left_to_the_channel_unless_asked() -> None:
    assert "h2" not in parse_options([], {}).settings
    assert HTTPChannel(handler, **parse_options([], {}).settings).settings.h2 is True


@pytest.mark.parametrize(("argv", "environ", "value"), [
    (["--no-h2"], {}, False),
    (["--h2"], {"TRIO_HTTPCHANNEL_H2": "false"}, True),
    ([], {"TRIO_HTTPCHANNEL_H2": "off"}, False),
    ([], {"TRIO_HTTPCHANNEL_H2": "yes"}, True),
])  # fmt: skip
def test_h2_switch_reaches_the_channel_from_the_command_line_or_the_environment(
    argv: list[str], environ: dict[str, str], value: bool
) -> None:
    assert HTTPChannel(handler, **parse_options(argv, environ).settings).settings.h2 is value


@pytest.mark.parametrize("word", ["none", "off", "None", "OFF"])
def test_ping_interval_and_timeout_take_none_or_off_for_none(word: str) -> None:
    options = parse_options(["--ws-ping-interval", word], {"TRIO_HTTPCHANNEL_WS_PING_TIMEOUT": word})
    settings = HTTPChannel(handler, **options.settings).settings
    assert (settings.ws_ping_interval, settings.ws_ping_timeout) == (None, None)


def test_websocket_settings_not_given_keep_the_channels_defaults() -> None:
    assert parse_options([], {}).settings == {}


@pytest.mark.parametrize(("text", "value"), [("on", True), ("off", False), ("true", True), ("0", False)])
def test_per_message_deflate_takes_on_and_off(text: str, value: bool) -> None:
    assert parse_options(["--ws-per-message-deflate", text], {}).settings == {"ws_per_message_deflate": value}


def test_ws_is_auto_unless_none_is_asked_and_comes_from_the_environment_too() -> None:
    assert parse_options([], {}).ws == "auto"
    assert parse_options([], {"TRIO_HTTPCHANNEL_WS": "None"}).ws == "none"
    assert parse_options(["--ws", "auto"], {"TRIO_HTTPCHANNEL_WS": "none"}).ws == "auto"


def test_the_command_line_wins_over_the_environment() -> None:
    options = parse_options(["--port", "9001"], {"TRIO_HTTPCHANNEL_PORT": "9002", "TRIO_HTTPCHANNEL_HOST": "::1"})
    assert (options.host, options.port) == ("::1", 9001)


def test_switches_read_true_and_false_from_the_environment() -> None:
    on = parse_options([], {"TRIO_HTTPCHANNEL_PROXY_HEADERS": "yes", "TRIO_HTTPCHANNEL_ACCESS_LOG": "0"})
    assert (on.proxy_headers, on.access_log) == (True, False)


def test_app_comes_from_the_environment_too() -> None:
    assert parse_options([], {"TRIO_HTTPCHANNEL_APP": "mod:app"}).app == "mod:app"


@pytest.mark.parametrize(
    ("argv", "environ", "complaint"),
    [
        ([], {"TRIO_HTTPCHANNEL_PORT": "eighty"}, "TRIO_HTTPCHANNEL_PORT"),
        ([], {"TRIO_HTTPCHANNEL_RELOAD": "maybe"}, "TRIO_HTTPCHANNEL_RELOAD"),
        (["--max-body-size", "-1"], {}, "max_body_size"),
        (["--uds", "/tmp/s", "--fd", "3"], {}, "--uds and --fd"),
        (["--keyfile", "k.pem"], {}, r"--keyfile \(--ssl-keyfile\) is a TLS option: .* --certfile"),
        (["--ssl-keyfile", "k.pem"], {}, r"--keyfile \(--ssl-keyfile\) is a TLS option"),
        (["--ssl-ca-certs", "ca.pem"], {}, "--ssl-ca-certs is a TLS option"),
        ([], {"TRIO_HTTPCHANNEL_SSL_CERT_REQS": "2"}, "--ssl-cert-reqs is a TLS option"),
        (["--ssl-ciphers", "ECDHE"], {}, "--ssl-ciphers is a TLS option"),
        (["--ssl-keyfile-password", "x"], {}, "--ssl-keyfile-password is a TLS option"),
        (["--certfile", "c.pem", "--ssl-cert-reqs", "3"], {}, "--ssl-cert-reqs: expected an integer from 0 to 2"),
        ([], {"TRIO_HTTPCHANNEL_SSL_CERT_REQS": "required"}, "TRIO_HTTPCHANNEL_SSL_CERT_REQS"),
        (["--certfile", "c.pem", "--ssl-cert-reqs", "1"], {}, "--ssl-cert-reqs 1 .* --ssl-ca-certs"),
        (["--ssl-certfile", "c.pem", "--ssl-cert-reqs", "2"], {}, "--ssl-cert-reqs 2 .* --ssl-ca-certs"),
        (["--forwarded-allow-ips", "not-an-ip"], {}, "not-an-ip"),
        (["--log-level", "loud"], {}, "--log-level"),
        (["--workers", "0"], {}, "--workers"),
        (["--port", "70000"], {}, "--port"),
        (["--max-connections", "0"], {}, "--max-connections"),
        (["--graceful-timeout", "nan"], {}, "--graceful-timeout"),
        (["--interface", "wsgi"], {}, "--interface"),
        ([], {"TRIO_HTTPCHANNEL_LOG_LEVEL": "loud"}, "TRIO_HTTPCHANNEL_LOG_LEVEL"),
        ([], {"TRIO_HTTPCHANNEL_WORKERS": "0"}, "TRIO_HTTPCHANNEL_WORKERS"),
        (["--proxy-protocol", "v3"], {}, "--proxy-protocol"),
        ([], {"TRIO_HTTPCHANNEL_PROXY_PROTOCOL": "yes"}, "TRIO_HTTPCHANNEL_PROXY_PROTOCOL"),
        (["--limit-max-requests", "0"], {}, "--limit-max-requests"),
        (["--limit-max-requests", "5", "--limit-max-requests-jitter", "-1"], {}, "--limit-max-requests-jitter"),
        (["--limit-max-requests-jitter", "5"], {}, "--limit-max-requests-jitter needs --limit-max-requests"),
        (["--ws", "websockets"], {}, "--ws"),
        ([], {"TRIO_HTTPCHANNEL_WS": "wsproto"}, "TRIO_HTTPCHANNEL_WS"),
        (["--ws-max-size", "0"], {}, "ws_max_size"),
        (["--ws-max-size", "16MiB"], {}, "--ws-max-size"),
        ([], {"TRIO_HTTPCHANNEL_WS_MAX_QUEUE": "0"}, "ws_max_queue"),
        (["--ws-ping-interval", "soon"], {}, "--ws-ping-interval"),
        (["--ws-ping-interval", "0"], {}, "ws_ping_interval"),
        (["--ws-ping-timeout", "-1"], {}, "ws_ping_timeout"),
        ([], {"TRIO_HTTPCHANNEL_WS_PING_TIMEOUT": "never"}, "TRIO_HTTPCHANNEL_WS_PING_TIMEOUT"),
        (["--ws-per-message-deflate", "maybe"], {}, "--ws-per-message-deflate"),
        (["--ws-per-message-deflate", ""], {}, "--ws-per-message-deflate"),
        (["--ws-close-timeout", "nan"], {}, "ws_close_timeout"),
        (["--ws-close-timeout", "none"], {}, "--ws-close-timeout"),
        ([], {"TRIO_HTTPCHANNEL_H2": "maybe"}, "TRIO_HTTPCHANNEL_H2"),
        (["--h2-max-concurrent-streams", "0"], {}, "h2_max_concurrent_streams must be at least 1"),
        (["--h2-max-concurrent-streams", "many"], {}, "--h2-max-concurrent-streams"),
        (["--h2-max-header-list-size", "100"], {}, "h2_max_header_list_size must be at least 1024"),
        (["--h2-initial-window-size", "65534"], {}, "h2_initial_window_size must be at least 65535"),
        (["--h2-initial-window-size", str(2**31)], {}, "h2_initial_window_size must be at most"),
        (["--h2-max-resets-per-second", "0"], {}, "h2_max_resets_per_second"),
        ([], {"TRIO_HTTPCHANNEL_H2_MAX_CONTROL_FRAMES_PER_SECOND": "0"}, "h2_max_control_frames_per_second"),
    ],
)
def test_impossible_options_are_usage_errors_naming_the_culprit(
    argv: list[str], environ: dict[str, str], complaint: str
) -> None:
    with pytest.raises(UsageError, match=complaint):
        parse_options(argv, environ)


def test_proxy_protocol_is_off_unless_asked_and_comes_from_the_environment_too() -> None:
    assert parse_options([], {}).proxy_protocol == "off"
    assert parse_options([], {"TRIO_HTTPCHANNEL_PROXY_PROTOCOL": "V2"}).proxy_protocol == "v2"


def test_request_limit_and_jitter_come_from_the_environment_too() -> None:
    environ = {"TRIO_HTTPCHANNEL_LIMIT_MAX_REQUESTS": "1000", "TRIO_HTTPCHANNEL_LIMIT_MAX_REQUESTS_JITTER": "50"}
    options = parse_options([], environ)
    assert (options.limit_max_requests, options.limit_max_requests_jitter) == (1000, 50)
    assert parse_options([], {}).limit_max_requests is None


def test_choices_are_case_insensitive() -> None:
    options = parse_options(["--log-level", "DEBUG"], {"TRIO_HTTPCHANNEL_INTERFACE": "ASGI"})
    assert (options.log_level, options.interface) == ("debug", "asgi")


def test_reload_dir_variable_holds_several_paths() -> None:
    assert parse_options([], {"TRIO_HTTPCHANNEL_RELOAD_DIR": os.pathsep.join(["a", "b"])}).reload_dir == ["a", "b"]


def test_reload_dirs_on_the_command_line_replace_the_environments() -> None:
    options = parse_options(["--reload-dir", "c", "--reload-dir", "d"], {"TRIO_HTTPCHANNEL_RELOAD_DIR": "a"})
    assert options.reload_dir == ["c", "d"]


def test_a_variable_starting_with_a_dash_is_a_value_not_an_option() -> None:
    assert parse_options([], {"TRIO_HTTPCHANNEL_ROOT_PATH": "-api"}).root_path == "-api"


def test_access_log_defaults_on_with_one_worker_and_off_with_more() -> None:
    assert parse_options([], {}).access_log
    assert not parse_options(["--workers", "2"], {}).access_log
    assert parse_options(["--workers", "2", "--access-log"], {}).access_log


async def handler(request: Request) -> Response:
    return Response(200)


async def asgi3(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI 3 app."""


class ASGI2:
    """An ASGI 2 app: constructed with the scope, then called with receive and send."""

    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        pass


class NativeObject:
    async def __call__(self, request: Request) -> Response:
        return Response(200)


@pytest.mark.parametrize(
    ("app", "kind"),
    [(handler, "native"), (NativeObject(), "native"), (asgi3, "asgi3"), (ASGI2, "asgi2")],
)
def test_the_interface_is_told_by_the_signature(app: object, kind: str) -> None:
    assert interface_of(app) == kind


def test_an_ambiguous_signature_asks_for_interface() -> None:
    with pytest.raises(CommandError, match="--interface"):
        interface_of(lambda *args: None)


def test_interface_can_be_forced() -> None:
    assert interface_of(lambda *args: None, "asgi") == "asgi3"
    assert interface_of(asgi3, "native") == "native"


def test_app_must_be_module_colon_attribute() -> None:
    with pytest.raises(CommandError, match="module:attribute"):
        load_app("just_a_module", app_dir=".", factory=False)


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory for modules written by a test; ``sys.path`` and ``sys.modules`` are restored after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    return tmp_path


def test_an_attribute_error_while_importing_is_an_import_failure(app_dir: Path) -> None:
    (app_dir / "raises_attribute_error.py").write_text("import os\napp = os.no_such_thing\n")
    with pytest.raises(CommandError, match=r"cannot import 'raises_attribute_error': AttributeError.*:2\)"):
        load_app("raises_attribute_error:app", app_dir=str(app_dir), factory=False)


def test_an_attribute_path_that_is_not_python_names_the_expected_form(app_dir: Path) -> None:
    (app_dir / "plain.py").write_text("app = None\n")
    with pytest.raises(CommandError, match="module:attribute"):
        load_app("plain:app-1", app_dir=str(app_dir), factory=False)


def test_a_factory_that_is_not_callable_is_named(app_dir: Path) -> None:
    (app_dir / "not_a_factory.py").write_text("app = 3\n")
    with pytest.raises(CommandError, match="the factory not_a_factory:app must be callable"):
        load_app("not_a_factory:app", app_dir=str(app_dir), factory=True)


def test_tls_options_take_uvicorns_names_and_come_from_the_environment_too() -> None:
    environ = {
        "TRIO_HTTPCHANNEL_SSL_CA_CERTS": "ca.pem",
        "TRIO_HTTPCHANNEL_SSL_KEYFILE_PASSWORD": "pw",
        "TRIO_HTTPCHANNEL_SSL_CIPHERS": "ECDHE+AESGCM",
    }
    options = parse_options(["--ssl-certfile", "c.pem", "--ssl-keyfile", "k.pem", "--ssl-cert-reqs", "1"], environ)
    assert (options.certfile, options.keyfile, options.ssl_cert_reqs) == ("c.pem", "k.pem", 1)
    assert (options.ssl_ca_certs, options.ssl_keyfile_password, options.ssl_ciphers) == ("ca.pem", "pw", "ECDHE+AESGCM")
    assert parse_options(["--certfile", "c.pem"], {}).ssl_cert_reqs == 0
