"""Runtime settings: the only reader of the environment (and of `.env`).

Every problem with a setting becomes one ConfigError (exit 2) that names the environment variable
(`setting CGPRESET_READ_TIMEOUT: ...`), in one place: `load_settings`. The key's value is never in
such a message. An empty variable counts as unset.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cgpreset.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://open-api-v4.coinglass.com"
DEFAULT_WS_URL = "wss://open-ws.coinglass.com/ws-api"
ENV_PREFIX = "CGPRESET_"
KEY_ENV = "COINGLASS_API_KEY"
KEY_ALIAS_ENV = "CG_API_KEY"
DEFAULT_STORE = "cgpreset.db"
#: Upper bound of every duration setting, seconds: larger values overflow socket timeouts.
MAX_SECONDS = 3600.0

PlanSetting = Literal["auto", "hobbyist", "startup", "standard", "professional"]
#: Seconds, finite, more than 0 and at most an hour.
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]


class Settings(BaseSettings):
    """Runtime settings, read from COINGLASS_API_KEY and CGPRESET_* variables (and a .env file)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_ignore_empty=True,  # `CGPRESET_PLAN=` means the default, `COINGLASS_API_KEY=` falls back to CG_API_KEY
        extra="ignore",
        populate_by_name=True,
    )

    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(KEY_ENV, KEY_ALIAS_ENV, "api_key"),
    )
    base_url: str | None = None  # None = the real API, or the embedded emulator when there is no key
    ws_url: str | None = None
    plan: PlanSetting = "auto"
    store: str = DEFAULT_STORE  # an SQLite file path or a postgresql:// URL (a Path would squeeze `://`)
    connect_timeout: Seconds = 5.0
    read_timeout: Seconds = 30.0
    answer_timeout: Seconds = 60.0  # the whole answer, first byte sent to last byte read
    max_answer_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, le=2**32)  # one answer's body
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_max: float = Field(default=30.0, ge=0, le=MAX_SECONDS, allow_inf_nan=False)  # cap of one backoff wait
    concurrency: int = Field(default=16, ge=1, le=64)  # I/O-bound: the limiter, not threads, guards the budget
    heartbeat_seconds: Seconds = 20.0
    # Set by a Kubernetes Indexed Job (JOB_COMPLETION_INDEX; JOB_COMPLETIONS by our manifests): the shard
    job_completion_index: int | None = Field(
        default=None, ge=0, validation_alias=AliasChoices("JOB_COMPLETION_INDEX", "job_completion_index"))
    job_completions: int | None = Field(
        default=None, ge=1, validation_alias=AliasChoices("JOB_COMPLETIONS", "job_completions"))

    @field_validator("api_key", mode="before")
    @classmethod
    def _clean_key(cls, value: object) -> object:
        """Surrounding whitespace (a pasted newline) goes; anything else unusual is an error.

        The message never quotes the value: it is the secret.
        """
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            return None
        if not (value.isascii() and value.isprintable()) or any(c.isspace() for c in value):
            raise ValueError(
                "the key must be one word of printable ASCII: it contains spaces, control or non-ASCII "
                "characters (value not shown)"
            )
        return value

    @field_validator("base_url", mode="before")
    @classmethod
    def _check_base_url(cls, value: object) -> object:
        return _check_url(value, ("http", "https"), DEFAULT_BASE_URL, query_ok=False)

    @field_validator("ws_url", mode="before")
    @classmethod
    def _check_ws_url(cls, value: object) -> object:
        return _check_url(value, ("ws", "wss"), DEFAULT_WS_URL, query_ok=True)

    @field_validator("plan", mode="before")
    @classmethod
    def _plan_any_case(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or "auto"
        return value

    @field_validator("store", mode="before")
    @classmethod
    def _blank_store_is_default(cls, value: object) -> object:
        if isinstance(value, Path):
            return value.as_posix()
        if isinstance(value, str) and not value.strip():
            return DEFAULT_STORE
        return value

    @property
    def has_key(self) -> bool:
        return self.api_key is not None

    @property
    def key(self) -> str | None:
        """The secret value, for the client's header only."""
        return self.api_key.get_secret_value() if self.api_key else None

    @property
    def uses_embedded_emulator(self) -> bool:
        """No key and no base-URL override: commands talk to the embedded emulator."""
        return self.base_url is None and self.api_key is None

    @property
    def effective_base_url(self) -> str:
        return self.base_url or DEFAULT_BASE_URL

    @property
    def effective_ws_url(self) -> str:
        return self.ws_url or DEFAULT_WS_URL

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


def _check_url(value: object, schemes: tuple[str, ...], example: str, *, query_ok: bool) -> object:
    """A blank URL is None; otherwise it must be `scheme://host[:port][/path]`, without a trailing slash."""
    if not isinstance(value, str):
        return value
    value = value.strip().rstrip("/")
    if not value:
        return None
    wanted = " or ".join(f"{s}://" for s in schemes)
    if not value.isprintable() or any(c.isspace() for c in value):
        raise ValueError(f"the URL contains spaces or control characters; expected {wanted}host, e.g. {example}")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc}); expected {wanted}host, e.g. {example}") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes or not parts.netloc:
        got = f"scheme {scheme}://" if scheme and parts.netloc else "no scheme and host"
        raise ValueError(f"must start with {wanted} and a host (e.g. {example}), not {got}")
    if not parts.hostname:
        raise ValueError(f"the URL has no host; expected {wanted}host, e.g. {example}")
    try:
        port = parts.port  # None when there is none; ValueError when it is not a number up to 65535
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")
    if parts.fragment or "#" in value:
        raise ValueError("the URL must not have a #fragment")
    if parts.query and not query_ok:
        raise ValueError("the URL must not have a ?query: paths are appended to it")
    return value


def _key_variable() -> str:
    """Which of COINGLASS_API_KEY / CG_API_KEY supplied the key (pydantic reports the first alias)."""
    sources: list[dict[str, str | None]] = [dict(os.environ)]
    env_file = Settings.model_config.get("env_file")
    if isinstance(env_file, str) and Path(env_file).is_file():
        try:
            from dotenv import dotenv_values

            sources.append(dict(dotenv_values(env_file)))
        except Exception:  # noqa: BLE001 - only for naming the variable in a message
            pass
    for source in sources:  # the environment wins over .env, COINGLASS_API_KEY over CG_API_KEY
        present = {k.upper() for k, v in source.items() if v}
        for name in (KEY_ENV, KEY_ALIAS_ENV):
            if name in present:
                return name
    return KEY_ENV


#: Settings read from a variable of another tool, not CGPRESET_* (a Kubernetes Indexed Job's own).
FOREIGN_ENV = {"job_completion_index": "JOB_COMPLETION_INDEX", "job_completions": "JOB_COMPLETIONS"}


def _env_name(field: str) -> str:
    """The environment variable behind a Settings field (or validation alias)."""
    if field.upper() in (KEY_ENV, KEY_ALIAS_ENV, "API_KEY"):
        return _key_variable()
    if field.lower() in FOREIGN_ENV:
        return FOREIGN_ENV[field.lower()]
    return ENV_PREFIX + field.upper()


def _describe(err: Any) -> str:
    """One pydantic error as `VARIABLE: what`; never the key, and URLs are not echoed."""
    field = str(err["loc"][0]) if err["loc"] else ""
    name = _env_name(field) if field else "settings"
    msg = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    echo = field not in ("api_key", KEY_ENV, KEY_ALIAS_ENV, "base_url", "ws_url") and "value_error" != err["type"]
    if echo and isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        shown = text if len(text) <= 40 else text[:37] + "..."
        msg += f" (got {shown!r})"
    return f"{name}: {msg}"


def format_settings_error(exc: ValidationError) -> str:
    """Every problem in a Settings ValidationError, on one line, each naming its environment variable."""
    return "setting " + "; ".join(_describe(err) for err in exc.errors())


def known_variables() -> list[str]:
    """Every CGPRESET_* variable a setting reads."""
    return sorted(ENV_PREFIX + name.upper() for name in Settings.model_fields
                  if name != "api_key" and name not in FOREIGN_ENV)


def misspelled_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each CGPRESET_* variable no setting reads, naming the nearest real one."""
    env = os.environ if environ is None else environ
    known = known_variables()
    warnings = []
    for name in sorted(n for n in env if n.upper().startswith(ENV_PREFIX) and n.upper() not in known):
        near = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]}?)" if near else f"; known: {', '.join(known)}"
        warnings.append(f"{name} is not a cgpreset setting and is ignored{hint}")
    return warnings


def settings_in_effect(settings: Settings, flags: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(variable, value, source) for every setting; secrets as <set>/<missing>, never their value.

    `flags` maps a setting overridden on the command line to its flag (`concurrency` -> `--concurrency`).
    """
    from cgpreset.redact import redact_dsn

    flags = flags or {}
    set_here = {n.upper() for n, v in os.environ.items() if v}
    rows = [(_key_variable() if settings.has_key else KEY_ENV, "<set>" if settings.has_key else "<missing>",
             "environment" if settings.has_key else "-")]
    for name in Settings.model_fields:
        if name == "api_key":
            continue
        value = getattr(settings, name)
        shown = "<unset>" if value is None else _redact_password(redact_dsn(str(value)))
        variable = _env_name(name)
        if name in flags:
            source = flags[name]
        elif variable in set_here:
            source = "environment"
        else:
            source = "default" if value == Settings.model_fields[name].default else ".env"
        rows.append((variable, shown, source))
    return rows


def _redact_password(text: str) -> str:
    """`user:secret@host` -> `user:<redacted>@host` in any form (a DSN squeezed by Path keeps one slash)."""
    import re

    return re.sub(r"(://?[^:/@\s]+:)[^@\s]*@", r"\1<redacted>@", text)


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment plus explicit overrides; errors become ConfigError.

    CGPRESET_* variables no setting reads (a typo) are logged as warnings naming the nearest real one.
    """
    for warning in misspelled_variables():
        log.warning(warning)
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(format_settings_error(exc)) from None
