"""The flags people reach for: --concurrency, --coins/--layers, doctor's settings, typo'd variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cgpreset.errors import UsageError
from cgpreset.run.select import select_configs, split_names
from cgpreset.settings import load_settings, misspelled_variables, settings_in_effect
from tests.test_run_e2e import invoke, write_configs
from tests.test_series import make_config


def test_a_misspelled_variable_names_the_nearest_real_one() -> None:
    warnings = misspelled_variables({"CGPRESET_CONCURENCY": "4", "CGPRESET_STORE": "x.db", "HOME": "/"})
    assert warnings == ["CGPRESET_CONCURENCY is not a cgpreset setting and is ignored "
                        "(did you mean CGPRESET_CONCURRENCY?)"]


def test_the_warning_reaches_stderr_of_any_command(monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke(["doctor", "--json", "--emulator"], {"CGPRESET_READ_TIMOUT": "3"})
    assert result.exit_code == 0, result.output
    assert "CGPRESET_READ_TIMOUT is not a cgpreset setting and is ignored (did you mean CGPRESET_READ_TIMEOUT?)" \
        in result.stderr


def test_settings_in_effect_never_show_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINGLASS_API_KEY", "sekret-key-123")
    monkeypatch.setenv("CGPRESET_STORE", "postgresql://u:hunter2@db/cg")
    rows = {name: (value, source) for name, value, source in settings_in_effect(load_settings(), {})}
    assert rows["COINGLASS_API_KEY"] == ("<set>", "environment")
    assert "hunter2" not in rows["CGPRESET_STORE"][0] and "<redacted>" in rows["CGPRESET_STORE"][0]
    assert rows["CGPRESET_CONCURRENCY"] == ("16", "default")
    assert "sekret" not in repr(rows)


def test_doctor_lists_every_setting_with_the_flag_that_set_it(emu_env: dict[str, str]) -> None:
    result = invoke(["doctor", "--json"], {**emu_env, "CGPRESET_CONCURRENCY": "3"})
    settings = json.loads(result.stdout)["settings"]
    for name in ("CGPRESET_STORE", "CGPRESET_CONCURRENCY", "CGPRESET_CONNECT_TIMEOUT", "CGPRESET_READ_TIMEOUT",
                 "CGPRESET_MAX_ATTEMPTS", "COINGLASS_API_KEY"):
        assert name in settings
    assert settings["CGPRESET_CONCURRENCY"] == {"value": "3", "source": "environment"}
    text = invoke(["doctor"], emu_env).stdout
    assert "settings in effect:" in text and "CGPRESET_MAX_ATTEMPTS" in text


def test_coins_and_layers_select_a_subset() -> None:
    configs = [(Path(f"{c}.yaml"), make_config(c)) for c in ("SOL", "BTC", "ETH")]
    chosen = select_configs(configs, coins=split_names("sol, BTC"), layers=split_names("funding,open_interest"))
    assert [cfg.coin for _, cfg in chosen] == ["SOL", "BTC"]
    layers = chosen[0][1].layers
    assert layers.funding is not None and layers.open_interest is not None and layers.liquidation is None


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("coins", "SOLL", "--coins: SOLL is not in the configs (did you mean SOL?)"),
    ("layers", "fundng", "--layers: fundng is not a layer (did you mean funding?)"),
])
def test_unknown_names_get_did_you_mean(flag: str, value: str, message: str) -> None:
    configs = [(Path("sol.yaml"), make_config("SOL"))]
    with pytest.raises(UsageError) as err:
        select_configs(configs, **{flag: [value]})
    assert str(err.value).startswith(message)


def test_run_preset_runs_only_the_subset_at_the_given_concurrency(tmp_path: Path, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC"))
    result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "--json", "--coins", "BTC",
                     "--layers", "funding", "--concurrency", "2"], emu_env)
    assert result.exit_code == 0, result.output
    series = json.loads(result.stdout)["series"]
    assert {(s["coin"], s["layer"]) for s in series} == {("BTC", "funding")}


def test_unknown_coin_flag_is_one_line_exit_2(tmp_path: Path, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    result = invoke(["run-preset", str(cfgs), "--coins", "SOLL"], emu_env)
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: --coins: SOLL is not in the configs (did you mean SOL?)"


@pytest.mark.parametrize("value", ["0", "65", "x"])
def test_concurrency_flag_is_range_checked(value: str, tmp_path: Path, emu_env: dict[str, Any]) -> None:
    result = invoke(["health", str(tmp_path), "--concurrency", value], emu_env)
    assert result.exit_code == 2 and "--concurrency" in result.stderr
