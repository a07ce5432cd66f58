"""Settings from the environment, the key kept secret, plans as data, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgpreset.errors import ConfigError
from cgpreset.plans import Plan, bar_open, history_days, interval_ms
from cgpreset.redact import redact, redact_url
from cgpreset.settings import DEFAULT_BASE_URL, load_settings

KEY = "abcdef0123456789SECRET"


def test_key_from_either_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CG_API_KEY", KEY)
    assert load_settings().key == KEY
    monkeypatch.setenv("COINGLASS_API_KEY", "other")
    assert load_settings().key == "other"  # the documented name wins


def test_key_is_secret_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINGLASS_API_KEY", KEY)
    s = load_settings()
    assert KEY not in repr(s) and KEY not in str(s) and KEY not in s.model_dump_json()


def test_defaults_and_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert not s.has_key and s.effective_base_url == DEFAULT_BASE_URL
    monkeypatch.setenv("COINGLASS_API_KEY", KEY)
    assert load_settings().effective_base_url == DEFAULT_BASE_URL  # a key and no override: the real API
    monkeypatch.setenv("CGPRESET_BASE_URL", "http://127.0.0.1:9/")
    assert load_settings().effective_base_url == "http://127.0.0.1:9"


def test_dotenv_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"COINGLASS_API_KEY={KEY}\nCGPRESET_PLAN=startup\n")
    s = load_settings()
    assert s.key == KEY and s.plan == "startup"


def test_bad_setting_is_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGPRESET_PLAN", "gold")
    with pytest.raises(ConfigError, match="^setting CGPRESET_PLAN: "):
        load_settings()


def test_plan_tables() -> None:
    assert [p.rate_per_minute for p in Plan] == [30, 80, 300, 1200]
    assert not Plan.HOBBYIST.allows_interval("1h") and Plan.HOBBYIST.allows_interval("4h")
    assert not Plan.STARTUP.allows_interval("15m") and Plan.STARTUP.allows_interval("30m")
    assert Plan.STANDARD.allows_interval("1m")
    assert history_days(Plan.STANDARD, "1h") == 360 and history_days(Plan.HOBBYIST, "1d") is None
    assert history_days(Plan.HOBBYIST, "1h") == 0
    assert Plan.from_level("ENTERPRISE") is Plan.PROFESSIONAL
    assert Plan.from_rate_limit(300) is Plan.STANDARD and Plan.from_rate_limit(10) is Plan.HOBBYIST
    with pytest.raises(ValueError, match="unknown interval"):
        interval_ms("h1")


def test_bars_align_to_interval_boundaries() -> None:
    t = 1_762_272_812_345
    assert bar_open(t, "1m") == 1_762_272_780_000
    assert bar_open(t, "1d") % 86_400_000 == 0
    assert (bar_open(t, "1w") // 86_400_000 - 4) % 7 == 0  # a Monday


def test_redaction() -> None:
    url = f"wss://open-ws.coinglass.com/ws-api?cg-api-key={KEY}&x=1"
    assert KEY not in redact_url(url) and "x=1" in redact_url(url)
    assert KEY not in redact(f"connect {url} failed")
    assert KEY not in redact(f"headers {{'CG-API-KEY': '{KEY}'}}")
    assert redact(f"plain {KEY} text", KEY) == "plain <redacted> text"
