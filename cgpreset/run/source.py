"""Where data comes from: the embedded emulator, or an API host (its name, without the port).

Every report, runs row, metrics file and health verdict names its source, so that synthetic data
is never passed off as CoinGlass's. A store holds one source only: a run whose source differs
from what the store already holds is refused (exit 2) before any request. The port is left out so
that a local server restarted on another port stays the same source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cgpreset.errors import ConfigError

if TYPE_CHECKING:
    from cgpreset.settings import Settings

#: The embedded emulator (used only by `demo` and with --emulator), as recorded in the runs table.
EMULATOR = "emulator"


def source_of(base_url: str, *, embedded: bool) -> str:
    """The source of requests sent to `base_url`: EMULATOR when it is the embedded one, else its host name."""
    if embedded:
        return EMULATOR
    return (urlsplit(base_url).hostname or base_url).lower()


def settings_source(settings: Settings, *, embedded: bool) -> str:
    """The source of a command run with `settings`: the embedded emulator, else the REST API's host."""
    return EMULATOR if embedded else source_of(settings.effective_base_url, embedded=False)


def stream_source(settings: Settings, *, embedded: bool) -> str:
    """The source of `stream`: the WebSocket host when CGPRESET_WS_URL is set, else as settings_source
    (the default deployment is named by its REST host, so a stream and a run of it are one source)."""
    if settings.ws_url is not None and not embedded:
        return source_of(settings.effective_ws_url, embedded=False)
    return settings_source(settings, embedded=embedded)


def describe(source: str) -> str:
    """How messages and reports name a source: "the embedded emulator" or the host name."""
    return "the embedded emulator" if source == EMULATOR else source


def check_source(recorded: list[str], source: str, *, store: str) -> None:
    """Refuse (ConfigError, exit 2) to write `source`'s data into a store holding another source's."""
    others = sorted(s for s in set(recorded) if s != source)
    if others:
        held = ", ".join(describe(s) for s in others)
        raise ConfigError(f"store {store} holds data from {held}; this run's source is {describe(source)}: "
                          "a store never mixes sources (use another --store)")

