"""Keep the API key out of everything a person or a file could see."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"
#: Shorter "keys" (real ones are 32 hex digits) would redact ordinary words ("x" in "exceeded").
_MIN_SECRET = 6
_KEY_PARAMS = {"cg-api-key", "cg_api_key", "api_key", "apikey"}
_QUERY_KEY = re.compile(r"(?i)(cg-api-key=)[^&\s'\"]+")
_HEADER_KEY = re.compile(r"(?i)(cg-api-key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+")


def redact_url(url: str) -> str:
    """The URL with any key-carrying query parameter replaced by <redacted>."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, REDACTED if k.lower() in _KEY_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="<>")))


def redact(text: str, secret: str | None = None) -> str:
    """Text with the secret (if given) and every `cg-api-key=`/`CG-API-KEY:` value removed."""
    if secret and len(secret) >= _MIN_SECRET:
        text = text.replace(secret, REDACTED)
    text = _QUERY_KEY.sub(lambda m: m.group(1) + REDACTED, text)
    return _HEADER_KEY.sub(lambda m: m.group(1) + REDACTED, text)


class RedactingLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Given to websockets as its logger: its DEBUG handshake lines carry the URL with the key."""

    def __init__(self, logger: logging.Logger, secret: str | None = None) -> None:
        super().__init__(logger, {})
        self.secret = secret

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, redact(text, self.secret), **kwargs)
