"""The settings in effect and one cheap call: is the key good, what plan, what budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cgpreset.api.client import CoinGlassClient
from cgpreset.errors import ApiError
from cgpreset.redact import redact, redact_url
from cgpreset.settings import Settings, settings_in_effect


@dataclass
class DoctorReport:
    """What `cgpreset doctor` found."""

    key: str  # "<set>" / "<missing>", never the value
    base_url: str
    ws_url: str
    embedded: bool
    plan: str | None
    rate_per_minute: int | None
    rate_used: int | None
    latency_ms: float | None
    error: ApiError | None
    settings: list[tuple[str, str, str]] = field(default_factory=list)  # (variable, value, source)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "base_url": self.base_url,
            "ws_url": redact_url(self.ws_url),
            "embedded_emulator": self.embedded,
            "plan": self.plan,
            "rate_per_minute": self.rate_per_minute,
            "rate_used": self.rate_used,
            "latency_ms": self.latency_ms,
            "error": None if self.error is None else {"kind": self.error.kind.value, "message": str(self.error)},
            "settings": {name: {"value": value, "source": source} for name, value, source in self.settings},
        }

    def lines(self) -> list[tuple[str, str]]:
        d = self.as_dict()
        out = [
            ("key", d["key"]),
            ("base url", d["base_url"] + ("  (embedded emulator)" if self.embedded else "")),
            ("ws url", d["ws_url"]),
            ("plan", d["plan"] or "unknown"),
            ("rate budget", f"{d['rate_per_minute']}/min" if d["rate_per_minute"] else "unknown"),
            ("used this minute", str(d["rate_used"]) if d["rate_used"] is not None else "unknown"),
            ("latency", f"{d['latency_ms']:.0f} ms" if d["latency_ms"] is not None else "-"),
        ]
        if self.error is not None:
            out.append(("error", str(self.error)))
        return out

    def settings_lines(self) -> list[str]:
        """`VARIABLE  value  (source)` for every setting in effect."""
        width = max((len(name) for name, _, _ in self.settings), default=0)
        return [f"{name:<{width}}  {value}  ({source})" for name, value, source in self.settings]


def run_doctor(client: CoinGlassClient, settings: Settings, *, ws_url: str | None = None,
               embedded: bool = False, flags: dict[str, str] | None = None) -> DoctorReport:
    """One cheap call (supported-coins) plus plan detection; errors are reported, not raised.

    `settings` are the user's (the key shows as <set>/<missing>, never its value); `ws_url` is
    where `stream` would connect (the embedded emulator's, with --emulator).
    """
    key = "<set>" if settings.has_key else "<missing>"
    if embedded:
        key += " (the embedded emulator uses a throwaway key)"
    plan = latency = None
    error: ApiError | None = None
    try:
        latency = round(client.request("supported-coins").latency * 1000, 1)
        plan = client.plan().value
    except ApiError as exc:
        error = exc
    return DoctorReport(
        key=key,
        base_url=redact(redact_url(client.base_url), settings.key),
        ws_url=ws_url or settings.effective_ws_url,
        embedded=embedded,
        plan=plan,
        rate_per_minute=client.rate_max or (client.limiter.limit if plan else None),
        rate_used=client.rate_used,
        latency_ms=latency,
        error=error,
        settings=settings_in_effect(settings, flags),
    )
