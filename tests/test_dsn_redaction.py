"""A PostgreSQL password never shows, whatever it holds (`@ / # ? : %` unescaped included) and
wherever the URL is shown: parsing, display, errors, logs, every command that takes --store."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import quote

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cgpreset.cli import cli
from cgpreset.errors import ConfigError, ExitCode
from cgpreset.redact import redact, redact_dsn, redact_url
from cgpreset.store.dsn import display, store_location
from tests.test_run_e2e import write_configs

#: Printable text as a user may type it: letters, digits, punctuation (`@ / # ? : %` among them),
#: symbols and spaces.
_PRINTABLE = st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="\x00")


def _marker(i: int) -> str:
    """Stitched between the random pieces of a password: seeing one in an output is a leak, even of
    a part (the fixed words of messages and the URL's other parts never hold one). Six characters:
    a password shorter than that is not redacted from free text (it would garble ordinary words)."""
    return f"Qz{i}Kxw"


@st.composite
def passwords(draw: st.DrawFn) -> tuple[str, list[str]]:
    pieces = draw(st.lists(st.text(_PRINTABLE, max_size=6), min_size=1, max_size=4))
    return "".join(piece + _marker(i) for i, piece in enumerate(pieces)), [_marker(i) for i in range(len(pieces))]


def _url(secret: str, query: bool) -> str:
    return f"postgresql://ingest:{secret}@db.example:5432/markets" + ("?sslmode=require" if query else "")


@given(passwords(), st.booleans(), st.booleans())
def test_no_parse_display_or_error_shows_any_part_of_the_password(
        drawn: tuple[str, list[str]], encoded: bool, query: bool) -> None:
    password, markers = drawn
    url = _url(quote(password, safe="") if encoded else password, query)
    shown = [redact_dsn(url), redact_url(url)]
    if not any(c.isspace() for c in password):  # free text: a password ends at a space (the URL is refused)
        shown += [redact(f"could not connect to {url}: refused"), redact(f"store '{url}' failed")]
    try:
        location = store_location(url)
    except ConfigError as exc:
        assert not encoded, str(exc)  # a percent-encoded password always parses
        shown += [str(exc), *exc.lines()]
        if any(c in password for c in "@/?#") and password.isprintable() and " " not in password:
            assert "percent-encode it" in str(exc) and "PGPASSWORD" in str(exc)
    else:
        assert not isinstance(location, Path)
        if encoded:
            assert location.password == password
        shown += [str(location), repr(location), display(location),
                  location.scrub(f"FATAL: password {location.password!r} for {url} refused")]
    for text in shown:
        assert not [m for m in markers if m in text], text


@pytest.mark.parametrize(("value", "says"), [
    ("postgresql://u:pa@ss@db/m", "the password holds an unescaped @, /, ? or #: percent-encode it"),
    ("postgresql://u:s3/cret@db/m", "the password holds an unescaped @, /, ? or #"),
    ("postgresql://u:p%zzword@db/m", "a % must start a percent-encoded byte"),
    ("postgresql://user@server:pw-secret@db/m", "the user name holds an unescaped @, /, ? or #"),
    ("postgresql:/u:pw-secret@db/m", "a PostgreSQL URL starts with postgresql://"),
])
def test_an_unescaped_url_is_refused_before_libpq_could_misread_it(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        store_location(value)
    assert says in str(err.value)
    assert not {"ss@db", "s3/cret", "cret", "zzword", "pw-secret"} & set(str(err.value).replace(":", " ").split())
    assert "<redacted>" in str(err.value) or "postgresql:..." in str(err.value)


# -- every command that takes --store ------------------------------------------------------------

#: Each command that takes --store, with what else it needs (CFGS: a config folder); the dry run
#: reads the store too, so it counts.
COMMANDS = {
    "run-preset": ["run-preset", "CFGS"],
    "run-preset --dry-run": ["run-preset", "CFGS", "--dry-run"],
    "health": ["health", "CFGS"],
    "freshness": ["freshness", "CFGS"],
    "demo": ["demo", "--out", "demo"],
    "stream": ["stream", "--config", "CFGS", "--max-events", "1"],
    "stream-alive": ["stream-alive"],
    "export": ["export", "funding"],
    "report": ["report", "CFGS", "--html", "r.html"],
    "runs": ["runs"],
    "runs show": ["runs", "show", "1"],
    "cursors": ["cursors"],
    "cursors reset": ["cursors", "reset", "funding/*", "--yes"],
    "cursors prune": ["cursors", "prune", "--yes"],
}
PASSWORD = "Pw@S3c/r#e?t:x%y"  # unescaped `@ / # ? : %`


def _store_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[str]:
    found = set()
    for name, command in group.commands.items():
        path = (*prefix, name)
        if any("--store" in getattr(p, "opts", ()) for p in command.params):
            found.add(" ".join(path))
        if isinstance(command, click.Group):
            found |= _store_commands(command, path)
    return found


def test_the_table_names_every_command_that_takes_a_store() -> None:
    assert _store_commands(cli) == {name.removesuffix(" --dry-run") for name in COMMANDS}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("escaped", [False, True], ids=["unescaped", "escaped-unreachable"])
@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_shows_the_store_password(tmp_path: Path, emu_env: dict[str, str], command: str,
                                             escaped: bool, log_format: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cgpreset.store.pg_guard.RECONNECT_PAUSES_S", (0.0, 0.0))  # unreachable: no real pause
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=1)
    secret = quote(PASSWORD, safe="") if escaped else PASSWORD
    dsn = f"postgresql://ingest:{secret}@127.0.0.1:{_closed_port()}/markets?connect_timeout=2"
    args = [str(cfgs) if a == "CFGS" else a for a in COMMANDS[command]]
    result = CliRunner().invoke(cli, [*args, "--store", dsn, "--log-format", log_format, "-vv"],
                                env={"CGPRESET_MAX_ATTEMPTS": "1", **emu_env})
    # a password that needs escaping is refused (2); an escaped one reaches a closed port: unreachable, retry (75)
    assert result.exit_code == (ExitCode.TEMPFAIL if escaped and command != "demo" else ExitCode.USAGE), result.output
    out = result.stdout + result.stderr
    for part in (PASSWORD, quote(PASSWORD, safe=""), "S3c", "r#e", "e?t", "x%y"):
        assert part not in out, out
    errors = [line for line in result.stderr.splitlines() if "Error: " in line or '"level": "error"' in line]
    assert len(errors) == 1, result.stderr
    if not escaped and command != "demo":
        assert "percent-encode it" in errors[0]
    if log_format == "json":
        assert all(isinstance(json.loads(line), dict) for line in result.stderr.splitlines())


def test_doctor_shows_the_store_setting_without_its_password(emu_env: dict[str, str]) -> None:
    dsn = f"postgresql://ingest:{PASSWORD}@db.example:5432/markets"
    result = CliRunner().invoke(cli, ["doctor", "--json"], env={**emu_env, "CGPRESET_STORE": dsn})
    assert "ingest:<redacted>@db.example:5432/markets" in result.stdout
    for part in (PASSWORD, "S3c", "r#e", "e?t", "x%y"):
        assert part not in result.stdout + result.stderr
