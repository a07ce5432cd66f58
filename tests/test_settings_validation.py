"""Bad settings are one-line ConfigErrors (exit 2) that name the variable and never show the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses
from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.errors import ConfigError
from cgpreset.redact import REDACTED, redact, redact_url
from cgpreset.settings import MAX_SECONDS, load_settings

KEY = "SECRETKEY_abc123xyz"
BASE = "http://api.test"
KEY_VARS = ["COINGLASS_API_KEY", "CG_API_KEY"]


def _config_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    return message


def _doctor(*args: str, **env: str):  # type: ignore[no-untyped-def]
    full = {"CGPRESET_BASE_URL": BASE, "COINGLASS_API_KEY": KEY, "CGPRESET_MAX_ATTEMPTS": "1", **env}
    return CliRunner().invoke(cli, [*args, "doctor"], env=full)


def _leaks(text: str, key: str) -> bool:
    """The key, its escaped form, or its recognisable part anywhere in the text."""
    return any(form in text for form in (key, repr(key)[1:-1], key.strip(), "SECRETKEY", "abc123xyz"))


# --- 1. the key: surrounding whitespace stripped, anything else unusual refused without echoing it


@pytest.mark.parametrize("var", KEY_VARS)
@pytest.mark.parametrize("raw", [KEY + "\n", KEY + "\r\n", f"  {KEY}\t", f"\n{KEY}\r"])
def test_surrounding_whitespace_is_stripped_from_the_key(monkeypatch: pytest.MonkeyPatch, var: str, raw: str) -> None:
    monkeypatch.setenv(var, raw)
    assert load_settings().key == KEY


@pytest.mark.parametrize("var", KEY_VARS)
@pytest.mark.parametrize("raw", ["SECRETKEY_abc\n123xyz", "SECRETKEY abc123xyz", "SECRETKEY_abc\x01123xyz",
                                 "SECRETKEY_abc\x7f123xyz", "SECRETKEY_abc123xyz\u20ac"])
def test_a_key_with_inner_whitespace_or_control_characters_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, var: str, raw: str
) -> None:
    message = _config_error(monkeypatch, **{var: raw})
    assert message.startswith(f"setting {var}: ")
    assert not _leaks(message, raw)


def test_an_empty_documented_key_falls_back_to_the_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINGLASS_API_KEY", "")
    monkeypatch.setenv("CG_API_KEY", KEY)
    assert load_settings().key == KEY


def test_a_bad_key_in_dotenv_names_its_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text('CG_API_KEY="SECRETKEY abc123xyz"\n')
    with pytest.raises(ConfigError, match="^setting CG_API_KEY: ") as info:
        load_settings()
    assert not _leaks(str(info.value), "SECRETKEY abc123xyz")


@responses.activate
def test_doctor_sends_the_stripped_key_and_never_shows_it() -> None:
    responses.get(BASE + "/api/futures/supported-coins", json={"code": "0", "data": ["BTC"]},
                  headers={"API-KEY-MAX-LIMIT": "300"})
    responses.get(BASE + "/api/user/account/subscription", json={"code": "0", "data": {"level": "STANDARD"}})
    result = _doctor("-vv", COINGLASS_API_KEY=KEY + "\n")
    assert result.exit_code == 0, result.output
    assert responses.calls[0].request.headers["CG-API-KEY"] == KEY
    assert not _leaks(result.output, KEY + "\n")


@responses.activate
@pytest.mark.parametrize("var", KEY_VARS)
def test_a_failing_doctor_run_with_a_newline_in_the_key_never_shows_it(var: str) -> None:
    responses.get(BASE + "/api/futures/supported-coins", json={"code": "400", "msg": "Invalid API key provided"})
    refused = _doctor("-vv", **{"COINGLASS_API_KEY": "", var: KEY + "\n"})
    assert refused.exit_code == 3, refused.output  # an auth refusal, not a retried transport error
    assert refused.stderr.strip().splitlines()[-1].startswith("Error: auth: ")
    assert not _leaks(refused.output, KEY + "\n")

    inner = "SECRETKEY_abc\n123xyz"
    bad = _doctor("-vv", **{"COINGLASS_API_KEY": "", var: inner})
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert bad.stderr.startswith(f"Error: setting {var}: ")
    assert "Traceback" not in bad.output and not _leaks(bad.output, inner)


# --- redaction is robust


def test_redact_catches_the_escaped_forms_of_the_secret() -> None:
    key = KEY + "\n"
    text = f"InvalidHeader: Invalid return character or leading space in header: CG-API-KEY: {key!r}"
    assert _leaks(text, key) and not _leaks(redact(text, key), key)
    assert redact(f"value {KEY + chr(1)!r}", KEY + chr(1)) == f"value '{REDACTED}'"
    assert redact(f"json \"{KEY}\\u0001\"", KEY + chr(1)) == f'json "{REDACTED}"'
    assert redact(f"url ?k={KEY}%0A", KEY + "\n") == f"url ?k={REDACTED}"
    assert redact("short x text", "x") == "short x text"


@pytest.mark.parametrize("url", [f"http://[::1?cg-api-key={KEY}", f"ws://[::1/ws-api?cg-api-key={KEY}&a=1",
                                 "http://[::1", f"ws://h:99999/x?cg-api-key={KEY}"])
def test_redact_url_never_raises_and_drops_the_key(url: str) -> None:
    out = redact_url(url)
    assert isinstance(out, str) and KEY not in out


def test_redact_url_hides_a_password_in_the_url() -> None:
    assert redact_url("https://me:hunter2pw@h/x") == f"https://me:{REDACTED}@h/x"
    assert "hunter2pw" not in redact_url("https://me:hunter2pw@[::1/x?a=1")


# --- 2. URLs are checked when settings are read


@pytest.mark.parametrize("url", ["http://[::1", "notaurl", "ftp://x", "http://127.0.0.1:99999", "http://h:abc",
                                 "http://h:0", "http://:80", "ws://h", "http://h/x?y=1", "http://h#top",
                                 "http://a b", "http://h\x01"])
def test_bad_base_url_is_a_settings_error(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    assert _config_error(monkeypatch, CGPRESET_BASE_URL=url).startswith("setting CGPRESET_BASE_URL: ")


@pytest.mark.parametrize("url", ["ws://[::1", "ws://127.0.0.1:99999/x", "http://h/ws-api", "wss://", "ws:///x",
                                 "ws://h/ws-api#f", "h/ws-api"])
def test_bad_ws_url_is_a_settings_error(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    assert _config_error(monkeypatch, CGPRESET_WS_URL=url).startswith("setting CGPRESET_WS_URL: ")


def test_good_urls_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGPRESET_BASE_URL", " HTTPS://[::1]:8443/prefix/ ")
    monkeypatch.setenv("CGPRESET_WS_URL", "wss://h:1/ws-api?x=1")
    s = load_settings()
    assert s.effective_base_url == "HTTPS://[::1]:8443/prefix" and s.effective_ws_url == "wss://h:1/ws-api?x=1"


def test_a_url_with_the_key_in_it_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _config_error(monkeypatch, CGPRESET_WS_URL=f"ws://h:70000/ws-api?cg-api-key={KEY}")
    assert KEY not in message


@responses.activate  # no request may leave the test, even if the check regressed
@pytest.mark.parametrize(("var", "url"), [("CGPRESET_BASE_URL", "http://[::1"), ("CGPRESET_BASE_URL", "notaurl"),
                                          ("CGPRESET_BASE_URL", "http://127.0.0.1:99999"),
                                          ("CGPRESET_WS_URL", "ws://[::1"), ("CGPRESET_WS_URL", "ws://h:99999/x")])
def test_doctor_with_a_bad_url_exits_2_with_one_line(var: str, url: str) -> None:
    result = _doctor(**{var: url})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith(f"Error: setting {var}: ")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


# --- 3. durations are finite, positive and capped


@pytest.mark.parametrize("var", ["CGPRESET_CONNECT_TIMEOUT", "CGPRESET_READ_TIMEOUT", "CGPRESET_HEARTBEAT_SECONDS"])
@pytest.mark.parametrize("value", ["inf", "-inf", "1e400", "nan", "1e12", str(MAX_SECONDS + 1), "0", "-1", "x"])
def test_bad_duration_is_a_settings_error(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    assert _config_error(monkeypatch, **{var: value}).startswith(f"setting {var}: ")


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "1e12", "-1"])
def test_bad_backoff_max_is_a_settings_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    assert _config_error(monkeypatch, CGPRESET_BACKOFF_MAX=value).startswith("setting CGPRESET_BACKOFF_MAX: ")


def test_durations_within_range_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGPRESET_READ_TIMEOUT", str(MAX_SECONDS))
    monkeypatch.setenv("CGPRESET_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("CGPRESET_BACKOFF_MAX", "0")  # no waiting between attempts
    s = load_settings()
    assert s.timeout == (0.5, MAX_SECONDS) and s.backoff_max == 0


@responses.activate  # no request may leave the test, even if the check regressed
@pytest.mark.parametrize(("var", "value"), [("CGPRESET_READ_TIMEOUT", "inf"), ("CGPRESET_CONNECT_TIMEOUT", "1e400"),
                                            ("CGPRESET_READ_TIMEOUT", "1e12")])
def test_doctor_with_a_huge_timeout_exits_2(var: str, value: str) -> None:
    result = _doctor(**{var: value})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith(f"Error: setting {var}: ") and "Traceback" not in result.output


# --- 4. every error names its variable; the plan in any case, empty = auto


@pytest.mark.parametrize(("var", "value"), [("CGPRESET_PLAN", "gold"), ("CGPRESET_MAX_ATTEMPTS", "0"),
                                            ("CGPRESET_MAX_ATTEMPTS", "1e400"), ("CGPRESET_CONCURRENCY", "65"),
                                            ("CGPRESET_HEARTBEAT_SECONDS", "soon")])
def test_every_settings_error_names_its_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    message = _config_error(monkeypatch, **{var: value})
    assert message.startswith(f"setting {var}: ") and f"(got {value!r})" in message


def test_all_bad_settings_are_named_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _config_error(monkeypatch, CGPRESET_PLAN="gold", CGPRESET_READ_TIMEOUT="inf")
    assert message.startswith("setting CGPRESET_PLAN: ") and "; CGPRESET_READ_TIMEOUT: " in message


@pytest.mark.parametrize(("value", "plan"), [("STANDARD", "standard"), (" Startup ", "startup"), ("", "auto"),
                                             ("  ", "auto"), ("AUTO", "auto")])
def test_plan_is_read_in_any_case_and_empty_means_auto(monkeypatch: pytest.MonkeyPatch, value: str, plan: str) -> None:
    monkeypatch.setenv("CGPRESET_PLAN", value)
    assert load_settings().plan == plan


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CGPRESET_READ_TIMEOUT", "CGPRESET_STORE", "CGPRESET_MAX_ATTEMPTS", "CGPRESET_BASE_URL"):
        monkeypatch.setenv(name, "")
    s = load_settings()
    assert s.read_timeout == 30 and s.store == "cgpreset.db" and s.max_attempts == 5 and s.base_url is None


@responses.activate  # no request may leave the test, even if the check regressed
def test_doctor_bad_plan_names_the_variable() -> None:
    result = _doctor(CGPRESET_PLAN="gold")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: setting CGPRESET_PLAN: ")
