"""`Client`: what the run engine, its budget and `health` need from a CoinGlass client.

CoinGlassClient satisfies it; so does the test suite's fake (tests/fakes.py). Everything the
engine reads from a client is named here, so it never probes one with hasattr/getattr.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from cgpreset.api.catalogue import Endpoint
from cgpreset.api.deadline import Deadline
from cgpreset.api.session import Response
from cgpreset.api.stats import ClientStats
from cgpreset.plans import Plan


class Waits(Protocol):
    """The rate limiter, as far as a run's stats and its progress need it."""

    @property
    def wall_waited_seconds(self) -> float:
        """Wall-clock time during which at least one thread waited for the rate budget."""
        ...

    def wall_waited(self) -> float:
        """The same, with a wait still in progress counted up to now."""
        ...

    @property
    def own_limit(self) -> int:
        """Requests a minute this process may start: the rate in force (the key's advertised limit,
        else its plan's, times this process's share)."""
        ...

    def seconds_for(self, n: int) -> float:
        """Seconds until `n` more requests could all have started, as the budget's window stands."""
        ...


class Client(Protocol):
    """A CoinGlass client as the run engine, its budget and `health` use it."""

    #: Counters over the client's life (requests, calls, retries, rate-limited answers, waits).
    stats: ClientStats
    #: API-KEY-MAX-LIMIT / API-KEY-USE-LIMIT of the last answer that carried them.
    rate_max: int | None
    rate_used: int | None

    @property
    def clock(self) -> float:
        """Now on the client's clock (the one a Deadline passed to it is measured on)."""
        ...

    @property
    def limiter(self) -> Waits: ...

    def request(self, key: str | Endpoint, params: Mapping[str, Any] | None = None, *,
                deadline: Deadline | None = None) -> Response:
        """One endpoint's answer; nothing runs past `deadline` (DeadlineExceededError)."""
        ...

    def plan(self, *, deadline: Deadline | None = None) -> Plan:
        """The key's plan (fixed, detected once, or assumed); may cost requests (counted in `stats`)."""
        ...

    def assume_plan(self, plan: Plan) -> Plan:
        """Take a plan known from before unless one is fixed or known already; the plan in effect."""
        ...

    def redact(self, text: str) -> str:
        """`text` (an answer kept as it came, say) without the key, which only the client holds."""
        ...


if TYPE_CHECKING:  # the real client satisfies the protocol (mypy checks this function)
    from cgpreset.api.client import CoinGlassClient

    def _satisfies(client: CoinGlassClient) -> Client:
        return client
