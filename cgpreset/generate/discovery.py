"""Discovery: what the API supports, fetched once per run and kept as a timestamped snapshot.

The snapshot (supported coins, instruments per exchange, and an open-interest ranking) is all
the resolver needs, so `--offline` runs and CI work without a key. Its content hash leaves out
`meta` (the timestamp, the plan it was fetched with, the raw open-interest figures, whom it was
fetched from), so a re-discovery that sees the same listings and the same ranking yields the
same hash, and the same generated files. `meta.source` says whose answers these are (`emulator`
or `api:<host>`): the configs made from it carry it in their provenance.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from cgpreset._io import format_validation, read_text
from cgpreset.api.rows import number
from cgpreset.errors import ApiError, ConfigError, MalformedResponseError, PlanError
from cgpreset.models.config import SOURCE_PATTERN
from cgpreset.plans import Plan

log = logging.getLogger("cgpreset.discovery")

SNAPSHOT_FORMAT: Final = 1
#: Where `generate` keeps its snapshot and schema, inside the output directory.
STATE_DIR = ".cgpreset"
SNAPSHOT_NAME = "discovery.json"

MARKETS_PER_PAGE = 100
MARKETS_MAX_PAGES = 20

RankSource = Literal["coins-markets", "open-interest-exchange-list"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Instrument(_Strict):
    """One instrument of supported-exchange-pairs: the venue's own id and its assets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instrument_id: str
    base_asset: str
    quote_asset: str


class Ranking(_Strict):
    """Coins by open interest, largest first."""

    by: Literal["open_interest_usd"] = "open_interest_usd"
    source: RankSource
    coins: list[str]


class SnapshotMeta(_Strict):
    """Facts about the fetch that are not content: excluded from the hash."""

    fetched_at: str
    plan: Plan | None = None
    open_interest_usd: dict[str, float] = Field(default_factory=dict)
    source: str | None = Field(default=None, pattern=SOURCE_PATTERN)  # None: a snapshot of an older release
    #: Ranking rows left out (no symbol; open interest null, negative or not a finite number),
    #: one note each naming the coin: `resolve` and `generate` show them with their other notes.
    notes: list[str] = Field(default_factory=list)


class Snapshot(_Strict):
    """supported-coins + supported-exchange-pairs (+ an OI ranking), as fetched once."""

    format: Literal[1] = SNAPSHOT_FORMAT
    meta: SnapshotMeta
    coins: list[str]
    pairs: dict[str, list[Instrument]]
    ranking: Ranking | None = None

    # Lookup indexes, built on first use; keyed by the object they index, so a model_copy with
    # new coins or pairs never reads a stale index.
    _by_base: tuple[int, dict[str, dict[str, list[Instrument]]]] | None = PrivateAttr(default=None)
    _by_lower: tuple[int, dict[str, str]] | None = PrivateAttr(default=None)

    # -- content and hashing ------------------------------------------------------------

    def content(self) -> dict[str, Any]:
        """The hashed part: everything but `meta`, in canonical order."""
        return {
            "format": self.format,
            "coins": list(self.coins),
            "pairs": {
                ex: [i.model_dump() for i in sorted(rows, key=lambda i: i.instrument_id)]
                for ex, rows in sorted(self.pairs.items())
            },
            "ranking": self.ranking.model_dump() if self.ranking else None,
        }

    def sha256(self) -> str:
        """Content hash, independent of the fetch time."""
        blob = json.dumps(self.content(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def to_json(self) -> str:
        """Stable text: sorted keys, two-space indent, LF, one trailing newline."""
        # notes only when there are some, source only when known: an older snapshot keeps its bytes
        meta = self.meta.model_dump(mode="json", exclude=None if self.meta.notes else {"notes"})
        if meta["source"] is None:
            del meta["source"]
        doc = {"meta": meta, **self.content()}
        return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    # -- lookups used by the resolver ---------------------------------------------------

    def _index(self) -> dict[str, dict[str, list[Instrument]]]:
        if self._by_base is None or self._by_base[0] != id(self.pairs):
            index: dict[str, dict[str, list[Instrument]]] = {}
            for ex in sorted(self.pairs):
                for inst in self.pairs[ex]:
                    index.setdefault(inst.base_asset, {}).setdefault(ex, []).append(inst)
            self._by_base = (id(self.pairs), index)
        return self._by_base[1]

    def listings(self, coin: str) -> dict[str, list[Instrument]]:
        """exchange -> instruments whose base asset is `coin` (exact CoinGlass spelling)."""
        return self._index().get(coin, {})

    def coin_spelling(self, name: str) -> str | None:
        """The CoinGlass spelling of a coin given in any case; exact matches win (kPEPE vs KPEPE)."""
        if self._by_lower is None or self._by_lower[0] != id(self.coins):
            exact = {c: c for c in self.coins}
            lower: dict[str, str] = {}
            for coin in self.coins:
                lower.setdefault(coin.lower(), coin)
            self._by_lower = (id(self.coins), {**lower, **exact})
        table = self._by_lower[1]
        return table.get(name) or table.get(name.lower())

    def exchange_spelling(self, name: str) -> str | None:
        """The CoinGlass spelling of an exchange given in any case."""
        if name in self.pairs:
            return name
        return next((ex for ex in sorted(self.pairs) if ex.lower() == name.lower()), None)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def load_snapshot(path: Path) -> Snapshot:
    """Read a snapshot file; ConfigError names the file and what is wrong."""
    text = read_text(
        path,
        missing="no discovery snapshot (run `cgpreset generate` online once, or pass --snapshot)",
        what="discovery snapshot file",
    )
    try:
        return Snapshot.model_validate_json(text)
    except ValidationError as exc:
        raise ConfigError(f"{path}: not a cgpreset discovery snapshot: {format_validation(exc)}") from None


def snapshot_path(out_dir: Path) -> Path:
    """Default snapshot location for an output directory."""
    return out_dir / STATE_DIR / SNAPSHOT_NAME


def discover(
    client: Any,
    *,
    ranking: bool = True,
    candidates: int = 30,
    plan: Plan | None = None,
    now: Callable[[], datetime] = _now,
    source: str | None = None,
) -> Snapshot:
    """Fetch supported coins, exchange pairs and (if asked) an OI ranking: one pass, no repeats.

    The ranking comes from coins-markets on Standard and up; below that (or if the API refuses
    it) from the "All" row of open-interest/exchange-list for the first `candidates` supported
    coins, one request each. `source` (`emulator` or `api:<host>`) is recorded in meta.
    """
    key_plan = plan or client.plan()
    coins = list(client.fetch("supported-coins"))
    if not coins:  # the API's problem, not the preset's: no coin exists for an empty answer
        raise MalformedResponseError("the supported-coins answer is empty; nothing written",
                                     path="/api/futures/supported-coins")
    raw_pairs = client.fetch("supported-exchange-pairs")
    pairs = {
        str(ex): [
            Instrument(
                instrument_id=str(r["instrument_id"]),
                base_asset=str(r["base_asset"]),
                quote_asset=str(r["quote_asset"]),
            )
            for r in rows
        ]
        for ex, rows in raw_pairs.items()
    }
    oi: dict[str, float] = {}
    rank: Ranking | None = None
    notes: list[str] = []
    if ranking:
        rank, oi = _rank(client, coins, key_plan, candidates, notes)
    meta = SnapshotMeta(
        fetched_at=now().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        plan=key_plan,
        open_interest_usd=oi,
        source=source,
        notes=notes,
    )
    return Snapshot(meta=meta, coins=coins, pairs=pairs, ranking=rank)


def _rows(client: Any, endpoint: str, params: dict[str, Any]) -> list[Any]:
    """An answer's rows as they came: one odd row must not cost the whole ranking (the typed
    fetch refuses an answer for any row with a null number), so each row is judged on its own."""
    answer = client.request(endpoint, params)
    data = answer.data
    if data is None:
        return []
    if not isinstance(data, list):
        raise MalformedResponseError(f"`data` is {type(data).__name__}, expected a list", path=answer.path)
    return data


def _usd(value: Any) -> float | str:
    """An open-interest figure as a number, or what is wrong with it (by the rows' one number rule)."""
    if value is None:
        return "is null"
    try:
        figure = number(value)
    except ValueError as exc:
        return f"{exc} ({value!r})"
    return f"is negative ({value!r})" if figure < 0 else figure


def _open_interest(row: Any, coin: str | None, source: str, notes: list[str]) -> tuple[str, float] | None:
    """(coin, open interest) of one ranking row; None, with a note naming the coin, for a row
    that cannot rank: no symbol, or a null, negative or non-finite open_interest_usd."""
    if coin is None:
        symbol = row.get("symbol") if isinstance(row, dict) else None
        if not isinstance(symbol, str) or not symbol.strip():
            notes.append(f"{source}: a row without a symbol was left out of the ranking")
            return None
        coin = symbol
    figure = _usd(row.get("open_interest_usd") if isinstance(row, dict) else None)
    if isinstance(figure, str):
        notes.append(f"{source}: {coin}: open_interest_usd {figure}; left out of the ranking")
        return None
    return coin, figure


def _coins_markets(client: Any) -> list[Any]:
    """Every coins-markets row, as it came. The default page size, its cap and the sort order are
    undocumented, so the first page's length is taken as the page size the server
    grants (a server that caps `per_page` below what we ask must not end the walk after page
    one), and the walk goes on until a shorter page, an empty one or one with nothing new."""
    rows: list[Any] = []
    seen: set[Any] = set()
    page_size = MARKETS_PER_PAGE
    for page in range(1, MARKETS_MAX_PAGES + 1):
        batch = _rows(client, "coins-markets", {"per_page": MARKETS_PER_PAGE, "page": page})
        if page == 1 and batch:
            page_size = min(page_size, len(batch))
        fresh = [r for r in batch if _symbol(r) not in seen]
        rows += fresh
        seen.update(_symbol(r) for r in fresh)
        if len(batch) < page_size or not fresh:
            break
    return rows


def _symbol(row: Any) -> Any:
    """A row's symbol, or the row's text when it has none (so a repeated page still ends the walk)."""
    symbol = row.get("symbol") if isinstance(row, dict) else None
    return symbol if isinstance(symbol, str) else repr(row)


def _rank(client: Any, coins: list[str], plan: Plan, candidates: int,
          notes: list[str]) -> tuple[Ranking, dict[str, float]]:
    supported = set(coins)
    oi: dict[str, float] = {}
    source: RankSource = "coins-markets"
    if plan.at_least(Plan.STANDARD):
        try:
            for row in _coins_markets(client):
                found = _open_interest(row, None, source, notes)
                if found is not None and found[0] in supported:
                    oi[found[0]] = found[1]
        except PlanError as exc:
            log.warning("coins-markets refused (%s); ranking by open-interest/exchange-list", exc)
            oi, notes[:] = {}, []
            source = "open-interest-exchange-list"
    else:
        source = "open-interest-exchange-list"
    if source == "open-interest-exchange-list":
        for coin in coins[:candidates]:
            try:
                rows = _rows(client, "open-interest-exchange-list", {"symbol": coin})
            except ApiError as exc:
                if exc.retryable or exc.kind.value in ("auth", "plan"):
                    raise
                log.warning("no open interest for %s: %s", coin, exc)
                continue
            total = next((r for r in rows if isinstance(r, dict) and r.get("exchange") == "All"), None)
            found = None if total is None else _open_interest(total, coin, source, notes)
            if found is not None:
                oi[coin] = found[1]
    order = sorted(oi, key=lambda c: (-oi[c], c))
    return Ranking(source=source, coins=order), {c: oi[c] for c in order}
