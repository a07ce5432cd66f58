"""The resolver against a hand-made discovery snapshot (tests/fixtures/discovery-snapshot.json)."""

from __future__ import annotations

from typing import Any

import pytest

from cgpreset.errors import ConfigError, FindingsError
from cgpreset.generate.discovery import Instrument, Ranking, Snapshot
from cgpreset.generate.resolver import (
    CoinResolution,
    filenames,
    is_coin_margined,
    is_dated,
    is_perpetual,
    plan_problems,
    resolve,
)
from cgpreset.models.preset import Preset, Watchlist, load_preset
from cgpreset.plans import Plan
from tests.conftest import FIXTURES, REPO

SNAPSHOT = Snapshot.model_validate_json((FIXTURES / "discovery-snapshot.json").read_text(encoding="utf-8"))
PRESET = load_preset(REPO / "presets" / "sol.yaml")


def _resolve(watchlist: dict[str, Any], preset: Preset = PRESET, snapshot: Snapshot = SNAPSHOT) -> Any:
    return resolve(preset, Watchlist.model_validate(watchlist), snapshot, preset_source="presets/sol.yaml")


def _one(coin: str, preset: Preset = PRESET) -> CoinResolution:
    (res,) = _resolve({"coins": [coin]}, preset).coins
    return res


def _with_funding(**changes: Any) -> Preset:
    assert PRESET.layers.funding is not None
    funding = PRESET.layers.funding.model_copy(update=changes)
    return PRESET.model_copy(update={"layers": PRESET.layers.model_copy(update={"funding": funding})})


def test_sol_is_the_identity_case() -> None:
    sol = _one("SOL")
    assert sol.layers == {
        "funding": {"exchange": "OKX", "symbol": "SOL-USDT-SWAP"},
        "open_interest": {"symbol": "SOL"},
        "liquidation": {"symbol": "SOL", "exchange_list": ["Binance", "OKX", "Bybit"]},
        "taker_volume": {"symbol": "SOL", "exchange_list": ["Binance", "OKX", "Bybit"]},
        "liquidation_exchanges": {"symbol": "SOL", "range": "1h", "exchanges": ["All", "Binance", "OKX", "Bybit"]},
        "etf_flows": {"asset": "bitcoin"},
    }
    assert sol.dropped_layers == {} and not sol.pair_fallback
    assert "funding: OKX SOL-USDT-SWAP, the preset's production pair" in sol.notes


def test_top10_by_open_interest_keeps_the_ranking_order() -> None:
    res = _resolve({"top": 10, "pin": ["SOL"]})
    assert [c.coin for c in res.coins] == ["BTC", "ETH", "SOL", "XRP", "DOGE", "HYPE", "BNB", "LINK", "SUI", "TRUMP"]
    assert [c.rank for c in res.coins] == list(range(1, 11))
    assert res.dropped == ()
    assert {c.coin: c.selected_by for c in res.coins}["SOL"] == "pin"


def test_coin_not_on_okx_falls_back_and_says_so() -> None:
    trump = _one("TRUMP")
    assert trump.layers["funding"] == {"exchange": "Binance", "symbol": "TRUMPUSDT"}
    assert trump.pair_fallback
    assert "funding: Binance TRUMPUSDT (USDT perpetual); fallback: OKX does not list TRUMP" in trump.notes
    assert trump.layers["liquidation"]["exchange_list"] == ["Binance", "Bybit"]
    assert "liquidation.exchange_list: dropped OKX (does not list TRUMP)" in trump.notes
    assert trump.layers["liquidation_exchanges"]["exchanges"] == ["All", "Binance", "Bybit"]


def test_never_a_coin_margined_contract_when_usdt_perpetual_is_wanted() -> None:
    link = _one("LINK")  # OKX lists only LINK-USD-SWAP
    assert link.layers["funding"] == {"exchange": "Binance", "symbol": "LINKUSDT"}
    assert any("fallback: OKX has only LINK-USD-SWAP (coin-margined)" in n for n in link.notes)


def test_never_a_dated_contract_when_usdt_perpetual_is_wanted() -> None:
    ada = _one("ADA")  # OKX lists only ADA-USDT-261225
    assert ada.layers["funding"] == {"exchange": "Binance", "symbol": "ADAUSDT"}
    assert any("fallback: OKX has only ADA-USDT-261225 (dated)" in n for n in ada.notes)


def test_every_funding_pair_is_a_listed_usdt_perpetual() -> None:
    res = _resolve({"coins": list(SNAPSHOT.coins)})
    for c in res.coins:
        f = c.layers.get("funding")
        if f is None:
            continue
        listed = {i.instrument_id: i for i in SNAPSHOT.pairs[f["exchange"]] if i.base_asset == c.coin}
        assert f["symbol"] in listed, c.coin
        assert is_perpetual(listed[f["symbol"]], "USDT"), c.coin


def test_exchange_lists_never_name_a_venue_without_the_coin() -> None:
    res = _resolve({"coins": list(SNAPSHOT.coins)})
    for c in res.coins:
        venues = set(SNAPSHOT.listings(c.coin))
        for name in ("liquidation", "taker_volume"):
            if name in c.layers:
                assert set(c.layers[name]["exchange_list"]) <= venues, (c.coin, name)
        if "liquidation_exchanges" in c.layers:
            assert set(c.layers["liquidation_exchanges"]["exchanges"]) - {"All"} <= venues


def test_coin_only_on_gate_and_hyperliquid() -> None:
    ton = _one("TON")
    assert ton.layers["funding"] == {"exchange": "Gate", "symbol": "TON_USDT"}
    assert "liquidation" not in ton.layers and "taker_volume" not in ton.layers
    assert ton.dropped_layers == {
        "liquidation": "none of Binance, OKX, Bybit lists TON",
        "taker_volume": "none of Binance, OKX, Bybit lists TON",
    }
    assert ton.layers["liquidation_exchanges"]["exchanges"] == ["All"]
    assert "liquidation: layer dropped: none of Binance, OKX, Bybit lists TON" in ton.notes


def test_case_insensitive_input_gets_the_coinglass_spelling() -> None:
    kpepe = _one("kpepe")
    assert (kpepe.coin, kpepe.requested, kpepe.filename) == ("kPEPE", "kpepe", "kpepe.yaml")
    assert "coin: 'kpepe' is spelled kPEPE by CoinGlass" in kpepe.notes
    # Only a USDC perpetual on Hyperliquid: no USDT perpetual anywhere, so the layer is dropped.
    assert "funding" not in kpepe.layers
    assert kpepe.dropped_layers["funding"] == (
        "no USDT perpetual for kPEPE: OKX, Binance, Bybit, Bitget, Gate, dYdX do not list kPEPE; "
        "Hyperliquid has only kPEPE (USDC perpetual)"
    )


def test_fallback_quotes_are_tried_after_every_venue_for_the_main_quote() -> None:
    kpepe = _one("kPEPE", _with_funding(fallback_quotes=["USDC"]))
    assert kpepe.layers["funding"] == {"exchange": "Hyperliquid", "symbol": "kPEPE"}
    btc = _one("BTC", _with_funding(fallback_quotes=["USDC"]))
    assert btc.layers["funding"]["exchange"] == "OKX"


def test_pepe_codes_do_not_collide() -> None:
    res = _resolve({"coins": ["1000PEPE", "PEPE", "kPEPE"]})
    assert {c.coin: c.filename for c in res.coins} == {
        "1000PEPE": "1000pepe.yaml", "PEPE": "pepe.yaml", "kPEPE": "kpepe.yaml",
    }
    assert {c.coin: c.layers.get("funding", {}).get("symbol") for c in res.coins} == {
        "1000PEPE": "1000PEPEUSDT", "PEPE": "PEPE-USDT-SWAP", "kPEPE": None,
    }


def test_case_insensitive_file_name_collision_is_explicit() -> None:
    names = filenames(["kPEPE", "KPEPE", "PEPE"])
    assert names["KPEPE"] == "kpepe.yaml"
    assert names["kPEPE"].startswith("kpepe-") and names["kPEPE"].endswith(".yaml")
    assert len(set(names.values())) == 3
    assert filenames(["KPEPE", "kPEPE"])["kPEPE"] == names["kPEPE"]  # stable: input order does not matter
    assert filenames(["A/B"]) == {"A/B": "a_b.yaml"}


def test_a_listed_unknown_coin_is_a_config_error_naming_file_field_and_coin() -> None:
    wl = Watchlist.model_validate({"coins": ["BTC", "SOLL", "eth"]})
    with pytest.raises(ConfigError) as info:
        resolve(PRESET, wl, SNAPSHOT, watchlist_source="wl.yaml")
    assert str(info.value) == "wl.yaml: coins[1]: SOLL is not a CoinGlass coin (did you mean SOL?)"


def test_every_unknown_coin_in_pin_include_and_coins_is_named_in_one_line() -> None:
    wl = Watchlist.model_validate({"top": 3, "pin": ["SOL", "NOTACOIN"], "include": ["kpep"]})
    with pytest.raises(ConfigError) as info:
        resolve(PRESET, wl, SNAPSHOT, watchlist_source="wl.yaml")
    assert str(info.value) == (
        "wl.yaml: pin[1]: NOTACOIN is not a CoinGlass coin; "  # nothing close enough to suggest
        "wl.yaml: include[0]: kpep is not a CoinGlass coin (did you mean kPEPE?)"
    )
    assert "\n" not in str(info.value)


def test_a_watchlist_that_leaves_no_coin_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"^wl\.yaml: coins: no coin left: exclude removes every listed coin$"):
        resolve(PRESET, Watchlist(coins=["ETH"], exclude=["eth"]), SNAPSHOT, watchlist_source="wl.yaml")
    assert SNAPSHOT.ranking is not None
    with pytest.raises(ConfigError, match=r"^wl\.yaml: exclude: removes every coin of the open-interest ranking$"):
        resolve(PRESET, Watchlist(top=3, exclude=SNAPSHOT.ranking.coins), SNAPSHOT, watchlist_source="wl.yaml")
    empty = SNAPSHOT.model_copy(update={"ranking": Ranking(source="coins-markets", coins=[])})
    with pytest.raises(FindingsError, match=r"^wl\.yaml: top: no coin to generate: the open-interest ranking"):
        resolve(PRESET, Watchlist(top=3), empty, watchlist_source="wl.yaml")


def test_coin_with_no_listing_keeps_coin_level_layers() -> None:
    fart = _one("FARTCOIN")
    assert set(fart.layers) == {"open_interest", "etf_flows"}
    assert set(fart.dropped_layers) == {"funding", "liquidation", "taker_volume", "liquidation_exchanges"}


def test_a_coin_left_with_no_layer_is_dropped_with_the_reasons() -> None:
    pair_only = PRESET.model_copy(update={"layers": PRESET.layers.model_copy(update={
        "open_interest": None, "etf_flows": None})})
    res = _resolve({"coins": ["FARTCOIN", "SOL"]}, pair_only)
    assert [c.coin for c in res.coins] == ["SOL"]
    (gone,) = res.dropped
    assert gone.requested == "FARTCOIN" and gone.reason.startswith("no layer left (funding: ")
    assert "liquidation: " in gone.reason and "taker_volume: " in gone.reason


def test_include_exclude_and_pin() -> None:
    res = _resolve({"top": 3, "pin": ["TON"], "include": ["kpepe"], "exclude": ["eth"]})
    # top 3 = pin TON + the 2 best-ranked not excluded; kPEPE on top of that
    assert [c.coin for c in res.coins] == ["BTC", "SOL", "TON", "kPEPE"]  # ordered by rank: TON 13, kPEPE 15
    assert [c.selected_by for c in res.coins] == ["top", "top", "pin", "include"]
    assert [(d.requested, d.reason) for d in res.dropped] == [("XRP", "ranked 3 of top 3, displaced by pin TON")]
    big = _resolve({"top": 1, "pin": ["SOL", "TON"]})
    assert [c.coin for c in big.coins] == ["SOL", "TON"]
    assert big.notes == ("top: pin holds 2 coins, more than top (1)",)
    assert [d.requested for d in big.dropped] == ["BTC"]


def test_include_comes_on_top_of_the_ranking() -> None:
    res = _resolve({"top": 10, "pin": ["SOL"], "include": ["TON"]})
    assert len(res.coins) == 11
    assert {"LINK", "TRUMP", "TON"} <= {c.coin for c in res.coins}
    assert res.dropped == ()
    ranked_anyway = _resolve({"top": 10, "pin": ["SOL"], "include": ["BTC"]})
    assert len(ranked_anyway.coins) == 10  # BTC is in the top 10: include adds nothing


def test_explicit_list_respects_exclude() -> None:
    res = _resolve({"coins": ["BTC", "ETH"], "exclude": ["ETH"]})
    assert [c.coin for c in res.coins] == ["BTC"]
    assert [(d.requested, d.reason) for d in res.dropped] == [("ETH", "excluded by the watchlist")]


def test_top_needs_a_ranking() -> None:
    bare = SNAPSHOT.model_copy(update={"ranking": None})
    with pytest.raises(ConfigError, match="watchlist: top: the discovery snapshot has no open-interest ranking"):
        resolve(PRESET, Watchlist(top=3), bare)


def test_short_ranking_is_noted() -> None:
    short = SNAPSHOT.model_copy(update={"ranking": Ranking(source="coins-markets", coins=["BTC", "ETH"])})
    res = resolve(PRESET, Watchlist(top=3), short)
    assert [c.coin for c in res.coins] == ["BTC", "ETH"]
    assert res.notes == ("top: only 2 of 3 coins have an open-interest ranking",)


def test_unknown_seed_coin_is_a_config_error_naming_file_field_and_coin() -> None:
    bad = PRESET.model_copy(update={"coin": "SOLL"})
    with pytest.raises(ConfigError, match=r"presets/sol\.yaml: coin: SOLL is not a CoinGlass coin"):
        _resolve({"coins": ["BTC"]}, bad)


def test_unknown_exchange_is_a_config_error_naming_the_field() -> None:
    assert PRESET.layers.taker_volume is not None
    taker = PRESET.layers.taker_volume.model_copy(update={"exchange_list": ["Binance", "Bybitt"]})
    bad = PRESET.model_copy(update={"layers": PRESET.layers.model_copy(update={"taker_volume": taker})})
    with pytest.raises(ConfigError, match=r"taker_volume\.exchange_list\[1\]: Bybitt is not a CoinGlass exchange"):
        _resolve({"coins": ["BTC"]}, bad)


def test_exchange_names_are_matched_case_insensitively() -> None:
    sol = _one("SOL", _with_funding(exchange="okx", fallback_exchanges=["binance"]))
    assert sol.layers["funding"] == {"exchange": "OKX", "symbol": "SOL-USDT-SWAP"}


def test_seed_whose_production_pair_vanished_is_resolved_like_the_others() -> None:
    sol = _one("SOL", _with_funding(symbol="SOL-USDT-GONE"))
    assert sol.layers["funding"] == {"exchange": "OKX", "symbol": "SOL-USDT-SWAP"}
    assert any("is not listed any more" in n for n in sol.notes)


def test_layer_interval_overrides_are_carried() -> None:
    sol = _one("SOL", _with_funding(interval="8h"))
    assert sol.layers["funding"]["interval"] == "8h"


@pytest.mark.parametrize(
    ("ident", "quote", "dated", "inverse"),
    [
        ("SOLUSDT", "USDT", False, False),
        ("SOLUSDT_261225", "USDT", True, False),
        ("SOL-USDT-261225", "USDT", True, False),
        ("BTC-26DEC25", "USDT", True, False),
        ("SOLUSD_PERP", "USD", False, True),
        ("SOL-USD-SWAP", "USDT", False, True),
        ("SOL-USD", "USD", False, True),
        ("SOL-USDT-SWAP", "USDT", False, False),
        ("1000000MOGUSDT", "USDT", False, False),
    ],
)
def test_contract_classification(ident: str, quote: str, dated: bool, inverse: bool) -> None:
    inst = Instrument(instrument_id=ident, base_asset="X", quote_asset=quote)
    assert is_dated(inst) is dated
    assert is_coin_margined(inst) is inverse
    assert is_perpetual(inst, "USDT") is (not dated and not inverse and quote == "USDT")


def test_plan_problems_name_the_preset_field() -> None:
    assert plan_problems(PRESET, Plan.STANDARD) == []
    assert plan_problems(PRESET, Plan.HOBBYIST) == ["interval: 1h is below the hobbyist plan's floor (4h)"]
    deep = PRESET.model_copy(update={"history_days": 200})
    assert plan_problems(deep, Plan.STARTUP) == [
        "history_days: 200 is deeper than the startup plan keeps at 1h (180 days)"
    ]
    fine = _with_funding(interval="1m")
    assert plan_problems(fine, Plan.STARTUP) == ["layers.funding.interval: 1m is below the startup plan's floor (30m)"]


def test_a_layer_above_the_plan_is_named_once_not_as_an_interval_problem() -> None:
    """cvd needs Startup: on Hobbyist its 4h interval is not 'below the floor (4h)' as well."""
    from cgpreset.layers import spec
    from cgpreset.models.layers import preset_block_model

    cvd = preset_block_model(spec("cvd"))(exchange_list=["Binance", "OKX"])
    at_4h = PRESET.model_copy(update={"interval": "4h",
                                      "layers": PRESET.layers.model_copy(update={"cvd": cvd})})
    assert plan_problems(at_4h, Plan.HOBBYIST) == ["layers.cvd: needs the startup plan or higher (this is hobbyist)"]
    assert plan_problems(at_4h, Plan.STARTUP) == []


def test_resolution_is_deterministic_and_serialisable() -> None:
    a = _resolve({"top": 10, "pin": ["SOL"]}).as_dict()
    b = _resolve({"top": 10, "pin": ["SOL"]}).as_dict()
    assert a == b
    assert set(a) == {"coins", "dropped", "notes"}
    assert set(a["coins"][0]) == {
        "coin", "requested", "selected_by", "rank", "file", "layers", "dropped_layers", "funding_fallback",
        "pair_fallback", "fallback_layers", "notes",
    }
