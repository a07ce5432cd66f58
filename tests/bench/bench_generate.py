"""Benchmark: generate 500 configs offline (resolve + render + validate + write), vs a 1-config run.

Run: pytest tests/bench -m bench -s -n 0
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cgpreset.generate.discovery import Instrument, Ranking, Snapshot, SnapshotMeta
from cgpreset.generate.pipeline import Inputs, open_templates, run_generate
from cgpreset.models.preset import Watchlist, load_preset
from tests.conftest import REPO

N = 500
#: "Well under a second" for 500 configs, with room for slow CI machines.
BUDGET_SECONDS = 1.0


def _snapshot(n: int) -> Snapshot:
    """n coins; every 7th is missing on OKX, every 5th on Bybit, as in real listings."""
    coins = ["SOL"] + [f"C{i:04d}" for i in range(n - 1)]
    pairs: dict[str, list[Instrument]] = {ex: [] for ex in ("Binance", "OKX", "Bybit", "Bitget", "Gate",
                                                            "Hyperliquid", "dYdX")}
    for i, c in enumerate(coins):
        pairs["Binance"] += [Instrument(instrument_id=f"{c}USDT", base_asset=c, quote_asset="USDT"),
                             Instrument(instrument_id=f"{c}USD_PERP", base_asset=c, quote_asset="USD")]
        if i % 7:
            pairs["OKX"] += [Instrument(instrument_id=f"{c}-USDT-SWAP", base_asset=c, quote_asset="USDT"),
                             Instrument(instrument_id=f"{c}-USDT-261225", base_asset=c, quote_asset="USDT")]
        if i % 5:
            pairs["Bybit"].append(Instrument(instrument_id=f"{c}USDT", base_asset=c, quote_asset="USDT"))
        pairs["Hyperliquid"].append(Instrument(instrument_id=c, base_asset=c, quote_asset="USD"))
    return Snapshot(
        meta=SnapshotMeta(fetched_at="2026-11-25T00:00:00Z", plan=None),
        coins=coins, pairs=pairs, ranking=Ranking(source="coins-markets", coins=coins),
    )


def _timed(fn: Callable[[int], object], repeat: int = 3) -> float:
    """Best of `repeat` runs (run i gets i, e.g. to write into a fresh directory)."""
    best = float("inf")
    for i in range(repeat):
        started = time.perf_counter()
        fn(i)
        best = min(best, time.perf_counter() - started)
    return best


@pytest.mark.bench
def test_generate_500_configs_offline(tmp_path: Path) -> None:
    preset_path = REPO / "presets" / "sol.yaml"
    preset = load_preset(preset_path)
    templates = open_templates(REPO / "templates")
    snap_path = tmp_path / "snapshot.json"
    snap_path.write_text(_snapshot(N).to_json(), encoding="utf-8")

    def inputs(n: int) -> Inputs:
        return Inputs(preset, "presets/sol.yaml", "0" * 64, Watchlist(top=n, pin=["SOL"]), "watchlist.yaml")

    def fresh(n: int) -> Callable[[int], object]:
        return lambda i: run_generate(inputs(n), templates, out_dir=tmp_path / f"out{n}-{i}", client=lambda: None,
                                      snapshot=snap_path)

    def again(n: int) -> Callable[[int], object]:
        return lambda i: run_generate(inputs(n), templates, out_dir=tmp_path / f"out{n}-0", client=lambda: None,
                                      snapshot=snap_path)

    one = _timed(fresh(1))
    full = _timed(fresh(N))
    noop = _timed(again(N))
    assert len(list((tmp_path / f"out{N}-0").glob("*.yaml"))) == N
    per_config = (full - one) / (N - 1)
    print(
        f"\ngenerate offline: {N} configs {full * 1000:.0f} ms (write) | {noop * 1000:.0f} ms (re-run, nothing "
        f"changes) | 1 config {one * 1000:.1f} ms\n"
        f"  per config {per_config * 1000:.2f} ms = {per_config / one:.2f}x a 1-config run; "
        f"{N} configs cost {full / one:.0f}x one config (fixed cost: snapshot load, schema, templates); "
        f"budget {BUDGET_SECONDS:.1f} s -> {full / BUDGET_SECONDS:.0%} used"
    )
    assert full < BUDGET_SECONDS
