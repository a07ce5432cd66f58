"""The key goes only to a URL set in the same place as the key:
a `.env` in the working directory must not send the environment's key to a host of its choosing."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.errors import ConfigError
from cgpreset.settings import Settings, load_settings, settings_in_effect

KEY = "origin-key-0123456789"
URLS = {"CGPRESET_BASE_URL": "http://127.0.0.1:9", "CGPRESET_WS_URL": "ws://127.0.0.1:9/ws-api"}
PLACES = ("environment", ".env", None)


def _place(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, values: dict[str, tuple[str, str | None]]) -> None:
    """Put each variable's value in the environment or in ./.env (tests run in tmp_path), or nowhere."""
    dotenv = []
    for name, (value, place) in values.items():
        if place == "environment":
            monkeypatch.setenv(name, value)
        elif place == ".env":
            dotenv.append(f"{name}={value}\n")
    (tmp_path / ".env").write_text("".join(dotenv), encoding="utf-8")


@pytest.mark.parametrize(("key_at", "base_at", "ws_at"), list(itertools.product(PLACES, repeat=3)))
def test_a_url_set_in_another_place_than_the_key_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key_at: str | None, base_at: str | None, ws_at: str | None
) -> None:
    """Every combination: refused exactly when a URL is set somewhere other than the key, naming both."""
    _place(monkeypatch, tmp_path, {"COINGLASS_API_KEY": (KEY, key_at), "CGPRESET_BASE_URL": (URLS["CGPRESET_BASE_URL"],
                                   base_at), "CGPRESET_WS_URL": (URLS["CGPRESET_WS_URL"], ws_at)})
    settings = load_settings()  # loading never refuses: offline commands need no key and no URL
    mismatched = [name for name, at in (("CGPRESET_BASE_URL", base_at), ("CGPRESET_WS_URL", ws_at))
                  if key_at is not None and at is not None and at != key_at]
    if not mismatched:
        settings.check_key_destination()
        assert settings.effective_base_url == (URLS["CGPRESET_BASE_URL"] if base_at else
                                               "https://open-api-v4.coinglass.com")
        return
    for use in (lambda: settings.effective_base_url, lambda: settings.effective_ws_url,
                settings.check_key_destination):
        with pytest.raises(ConfigError) as info:
            use()
        message = str(info.value)
        where = {"environment": "the environment", ".env": ".env"}
        url_at = base_at if mismatched[0] == "CGPRESET_BASE_URL" else ws_at
        assert message.startswith(f"setting {mismatched[0]}: set in {where[str(url_at)]} but COINGLASS_API_KEY "
                                  f"in {where[str(key_at)]}: the key is only sent to a URL set in the same place")
        assert KEY not in message


def test_each_setting_says_where_it_came_from(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"CG_API_KEY={KEY}\nCGPRESET_PLAN=startup\nCGPRESET_STORE=\n", encoding="utf-8")
    monkeypatch.setenv("CGPRESET_CONCURRENCY", "4")
    monkeypatch.setenv("CGPRESET_PLAN", "standard")  # the environment wins over .env, and says so
    s = load_settings()
    assert [s.origin(f) for f in ("api_key", "concurrency", "plan", "store", "base_url")] == [
        ".env", "environment", "environment", "default", "default"]
    rows = {name: source for name, _, source in settings_in_effect(s, {})}
    assert rows["CG_API_KEY"] == ".env" and rows["CGPRESET_PLAN"] == "environment"
    assert Settings(api_key=KEY, base_url="http://127.0.0.1:9").origin("base_url") == "argument"
    moved = s.model_copy(update={"base_url": "http://127.0.0.1:9"})  # changed by a program after loading
    assert moved.origin("base_url") == "argument"
    with pytest.raises(ConfigError, match="set in the program's arguments but CG_API_KEY in .env"):
        moved.check_key_destination()


def test_the_client_never_sends_the_key_to_a_dotenv_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       emulator: Any) -> None:
    """The library too: a client built from such settings refuses before its first request."""
    from cgpreset.api.client import CoinGlassClient

    (tmp_path / ".env").write_text(f"CGPRESET_BASE_URL={emulator.base_url}\n", encoding="utf-8")
    monkeypatch.setenv("COINGLASS_API_KEY", emulator.api_key)
    with pytest.raises(ConfigError, match="^setting CGPRESET_BASE_URL: set in .env but COINGLASS_API_KEY in "):
        CoinGlassClient(load_settings())
    assert emulator.recorded() == []


@pytest.mark.parametrize("url_in_dotenv", [True, False], ids=["url-in-dotenv", "key-in-dotenv"])
@pytest.mark.parametrize("command", [["doctor"], ["resolve"], ["stream", "--max-events", "1"]])
def test_commands_refuse_a_key_and_url_from_different_places(tmp_path: Path, emulator: Any, command: list[str],
                                                             url_in_dotenv: bool) -> None:
    """The `.env` names a server (here the emulator, standing in for someone else's host): exit 2, one
    line naming both variables and both places, and the server never hears from us."""
    url_var = "CGPRESET_WS_URL" if command[0] == "stream" else "CGPRESET_BASE_URL"
    url = emulator.ws_url if url_var == "CGPRESET_WS_URL" else emulator.base_url
    in_dotenv, in_env = (f"{url_var}={url}", {"COINGLASS_API_KEY": emulator.api_key}) if url_in_dotenv else (
        f"COINGLASS_API_KEY={emulator.api_key}", {url_var: url})
    (tmp_path / ".env").write_text(in_dotenv + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, command, env=in_env)
    assert result.exit_code == 2, result.output
    url_at, key_at = (".env", "the environment") if url_in_dotenv else ("the environment", ".env")
    assert [line for line in result.stderr.splitlines() if not line.startswith("note:")] == [
        f"Error: setting {url_var}: set in {url_at} but COINGLASS_API_KEY in {key_at}: the key is only sent to a "
        f"URL set in the same place (set both in the environment or both in .env, or unset {url_var})"]
    assert emulator.recorded() == [] and emulator.ws_recorded() == []
    assert emulator.api_key not in result.output


@pytest.mark.parametrize("place", ["environment", ".env"])
def test_a_key_and_url_from_the_same_place_are_used(tmp_path: Path, emulator: Any, place: str) -> None:
    values = {"COINGLASS_API_KEY": emulator.api_key, "CGPRESET_BASE_URL": emulator.base_url,
              "CGPRESET_WS_URL": emulator.ws_url}
    if place == ".env":
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    result = CliRunner().invoke(cli, ["doctor"], env=values if place == "environment" else {})
    assert result.exit_code == 0, result.output
    assert any(r.path == "/api/futures/supported-coins" for r in emulator.recorded())
    assert re.search(rf"COINGLASS_API_KEY +<set> +\({re.escape(place)}\)", result.stdout)  # doctor says where
    assert re.search(rf"CGPRESET_BASE_URL +{re.escape(emulator.base_url)} +\({re.escape(place)}\)", result.stdout)
