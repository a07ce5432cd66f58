"""Runtime settings: the only reader of the environment (and of `.env`).

Every problem with a setting becomes one ConfigError (exit 2) that names the environment variable
(`setting CGPRESET_READ_TIMEOUT: ...`), in one place: `load_settings`. The key's value is never in
such a message. An empty variable counts as unset.

Each setting remembers where its value came from (the process environment, `.env`, an argument,
or the default). The key is only ever sent to a URL set in the same place as the key: a `.env`
left in the working directory must not send the environment's key to a host of its choosing.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cgpreset.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://open-api-v4.coinglass.com"
DEFAULT_WS_URL = "wss://open-ws.coinglass.com/ws-api"
ENV_PREFIX = "CGPRESET_"
KEY_ENV = "COINGLASS_API_KEY"
KEY_ALIAS_ENV = "CG_API_KEY"
DEFAULT_STORE = "cgpreset.db"
PUSHGATEWAY_EXAMPLE = "http://pushgateway:9091"
#: Upper bound of every duration setting, seconds: larger values overflow socket timeouts.
MAX_SECONDS = 3600.0

PlanSetting = Literal["auto", "hobbyist", "startup", "standard", "professional"]
#: Seconds, finite, more than 0 and at most an hour.
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]

#: Where a setting's value came from, as `doctor` shows it.
ENVIRONMENT, DOTENV, ARGUMENT, DEFAULT = "environment", ".env", "argument", "default"
#: The settings that say where the key is sent, and their variables.
KEY_DESTINATIONS = {"base_url": "CGPRESET_BASE_URL", "ws_url": "CGPRESET_WS_URL"}


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
    base_url: str | None = None  # None = the real API
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
    pushgateway: str | None = None  # run-preset and health push their metrics here (or --pushgateway)
    job: str | None = Field(default=None, max_length=253)  # the scheduler's job a run belongs to (runs shows it)
    # Set by a Kubernetes Indexed Job (JOB_COMPLETION_INDEX; JOB_COMPLETIONS by our manifests): the shard
    job_completion_index: int | None = Field(
        default=None, ge=0, validation_alias=AliasChoices("JOB_COMPLETION_INDEX", "job_completion_index"))
    job_completions: int | None = Field(
        default=None, ge=1, validation_alias=AliasChoices("JOB_COMPLETIONS", "job_completions"))
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)  # field -> ENVIRONMENT, DOTENV, ...

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._origins = _origins(values)

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

    @field_validator("pushgateway", mode="before")
    @classmethod
    def _check_pushgateway(cls, value: object) -> object:
        return _check_url(value, ("http", "https"), PUSHGATEWAY_EXAMPLE, query_ok=False)

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

    def origin(self, field: str) -> str:
        """Where the setting `field` came from: ENVIRONMENT, DOTENV, ARGUMENT or DEFAULT."""
        origin = self._origins.get(field, DEFAULT)
        if origin == DEFAULT and getattr(self, field) != type(self).model_fields[field].default:
            return ARGUMENT  # set by a program after loading (model_copy(update=...))
        return origin

    def check_key_destination(self) -> None:
        """Refuse (ConfigError, exit 2) a base or WebSocket URL set in another place than the key.

        The key is sent to those URLs; one set in `.env` while the key is in the environment (or the
        reverse) could send the key to a host that whoever wrote the other place never chose.
        """
        if self.api_key is None:
            return
        key_from = self.origin("api_key")
        for field, variable in KEY_DESTINATIONS.items():
            url_from = self.origin(field)
            if getattr(self, field) is not None and url_from != key_from:
                key = _key_variable()
                raise ConfigError(
                    f"setting {variable}: set in {_place(url_from)} but {key} in {_place(key_from)}: the key is "
                    f"only sent to a URL set in the same place (set both in the environment or both in .env, "
                    f"or unset {variable})")

    @property
    def effective_base_url(self) -> str:
        """Where requests go (and the key with them): checked against the key's origin first."""
        self.check_key_destination()
        return self.base_url or DEFAULT_BASE_URL

    @property
    def effective_ws_url(self) -> str:
        """Where `stream` connects (the key in its query): checked against the key's origin first."""
        self.check_key_destination()
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


def pushgateway_url(value: str) -> str | None:
    """A `--pushgateway` value checked as CGPRESET_PUSHGATEWAY is (ValueError saying what is wrong)."""
    checked = _check_url(value, ("http", "https"), PUSHGATEWAY_EXAMPLE, query_ok=False)
    return checked if isinstance(checked, str) else None


def _dotenv() -> dict[str, str | None]:
    """The variables of the `.env` file pydantic-settings reads (none when there is no file)."""
    env_file = Settings.model_config.get("env_file")
    if not (isinstance(env_file, str) and Path(env_file).is_file()):
        return {}
    try:
        from dotenv import dotenv_values

        return dict(dotenv_values(env_file))
    except Exception:  # noqa: BLE001 - an unreadable .env: pydantic-settings reports it when it reads it
        return {}


def _set(variables: Mapping[str, str | None]) -> set[str]:
    """The names (upper case: case does not matter) of the variables set to something."""
    return {k.upper() for k, v in variables.items() if v}


def _variables(field: str) -> tuple[str, ...]:
    """The environment variables a Settings field reads, the winning one first."""
    if field == "api_key":
        return (KEY_ENV, KEY_ALIAS_ENV)
    return (FOREIGN_ENV[field],) if field in FOREIGN_ENV else (ENV_PREFIX + field.upper(),)


def _origins(given: Mapping[str, object]) -> dict[str, str]:
    """Where each field's value came from, in pydantic-settings' order: arguments, then the process
    environment, then `.env`, then the default (an empty variable counts as unset, as it does there)."""
    arguments = {k.upper() for k, v in given.items() if v is not None}
    environ, dotenv = _set(os.environ), _set(_dotenv())
    origins = {}
    for field in Settings.model_fields:
        names = _variables(field)
        if field.upper() in arguments or arguments & set(names):
            origins[field] = ARGUMENT
        elif environ & set(names):
            origins[field] = ENVIRONMENT
        elif dotenv & set(names):
            origins[field] = DOTENV
        else:
            origins[field] = DEFAULT
    return origins


def _place(origin: str) -> str:
    """An origin as messages name it."""
    return {ENVIRONMENT: "the environment", DOTENV: ".env", ARGUMENT: "the program's arguments"}.get(origin, origin)


def _key_variable() -> str:
    """Which of COINGLASS_API_KEY / CG_API_KEY supplied the key (pydantic reports the first alias)."""
    for present in (_set(os.environ), _set(_dotenv())):  # the environment wins over .env
        for name in _variables("api_key"):  # COINGLASS_API_KEY over CG_API_KEY
            if name in present:
                return name
    return KEY_ENV


#: Set by Kubernetes in every container (the API server's address): cgpreset runs in a pod.
POD_ENV = "KUBERNETES_SERVICE_HOST"


def in_pod(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a Kubernetes pod, whose files live on the pod's own emptyDir and go with it."""
    return bool((os.environ if environ is None else environ).get(POD_ENV, "").strip())


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
    urls = ("base_url", "ws_url", "pushgateway")  # may carry a password: not echoed
    echo = field not in ("api_key", KEY_ENV, KEY_ALIAS_ENV, *urls) and "value_error" != err["type"]
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
    rows = [(_key_variable() if settings.has_key else KEY_ENV, "<set>" if settings.has_key else "<missing>",
             settings.origin("api_key") if settings.has_key else "-")]
    for name in Settings.model_fields:
        if name == "api_key":
            continue
        value = getattr(settings, name)
        shown = "<unset>" if value is None else _redact_password(redact_dsn(str(value)))
        rows.append((_env_name(name), shown, flags.get(name) or settings.origin(name)))
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
        return Settings(**clean)
    except ValidationError as exc:
        raise ConfigError(format_settings_error(exc)) from None
