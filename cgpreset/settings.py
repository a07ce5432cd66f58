"""Runtime settings: the only reader of the environment (and of `.env`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

DEFAULT_BASE_URL = "https://open-api-v4.coinglass.com"
DEFAULT_WS_URL = "wss://open-ws.coinglass.com/ws-api"

PlanSetting = Literal["auto", "hobbyist", "startup", "standard", "professional"]


class Settings(BaseSettings):
    """Runtime settings, read from COINGLASS_API_KEY and CGPRESET_* variables (and a .env file)."""

    model_config = SettingsConfigDict(
        env_prefix="CGPRESET_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("COINGLASS_API_KEY", "CG_API_KEY", "api_key"),
    )
    base_url: str | None = None  # None = the real API, or the embedded emulator when there is no key
    ws_url: str | None = None
    plan: PlanSetting = "auto"
    store: Path = Path("cgpreset.db")
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_max: float = Field(default=30.0, ge=0)  # seconds, cap of one backoff wait
    concurrency: int = Field(default=16, ge=1, le=64)  # I/O-bound: the limiter, not threads, guards the budget
    heartbeat_seconds: float = Field(default=20.0, gt=0)

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("base_url", "ws_url", mode="before")
    @classmethod
    def _blank_url_is_none(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().rstrip("/")
            return value or None
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


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment plus explicit overrides; errors become ConfigError."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        raise ConfigError(f"setting {loc}: {err['msg']}") from None
