"""Keep the API key and any store password out of everything a person or a file could see."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"
#: Shorter "keys" (real ones are 32 hex digits) would redact ordinary words ("x" in "exceeded").
_MIN_SECRET = 6
#: Query parameters that carry a secret: the API key, and libpq's `password` (postgresql://...?password=).
_KEY_PARAMS = {"cg-api-key", "cg_api_key", "api_key", "apikey", "password"}
_QUERY_KEY = re.compile(r"(?i)(cg-api-key=)[^&\s'\"]+")
_HEADER_KEY = re.compile(r"(?i)(cg-api-key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+")
#: `scheme://user:password@` in free text: the password runs to the LAST `@` of the word, since an
#: unescaped one may hold `@ / ? #` (a Path squeezes `://` to `:/`, so one slash counts too).
_USERINFO_PASSWORD = re.compile(r"(:/{1,2}[^:@\s]*:)\S*@")
#: A `password=...` in a libpq DSN (key=value form or URI query) or in a message quoting one.
_DSN_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'\"]+)")


def _mask_userinfo(url: str) -> str:
    """`scheme://user:password@host...` with the password replaced. Everything between `://` and
    the LAST `@` is the user:password part, and the password runs from its first `:`: a password
    with an unescaped `@ / ? #` is hidden whole, where a URL parser would end it early and show
    the rest as a host or a path. Where the `@` was in a query value, this hides more: never less.
    """
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}:{REDACTED}@{hostpart}" if sep and at and colon else url


def redact_url(url: str) -> str:
    """The URL with any key-carrying query parameter (and a userinfo password) replaced by <redacted>.

    Never raises: a URL that does not parse keeps only what comes before its query.
    """
    url = _mask_userinfo(url)
    try:
        parts = urlsplit(url)
        if not parts.query:
            return url
        query = [
            (k, REDACTED if k.lower() in _KEY_PARAMS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return urlunsplit(parts._replace(query=urlencode(query, safe="<>")))
    except (ValueError, TypeError, UnicodeError):
        head, sep, _ = str(url).partition("?")
        head = _USERINFO_PASSWORD.sub(lambda m: m.group(1) + REDACTED + "@", head)
        return redact(head) + (sep + REDACTED if sep else "")


def _secret_forms(secret: str) -> list[str]:
    """The secret as it may appear in a message: raw, stripped, and escaped or quoted by a library."""
    forms = {
        secret,
        secret.strip(),
        repr(secret)[1:-1],  # e.g. requests' InvalidHeader quotes the value: 'KEY\n'
        ascii(secret)[1:-1],
        json.dumps(secret)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret),
    }
    return sorted((f for f in forms if len(f) >= _MIN_SECRET), key=len, reverse=True)


def redact_key(text: str, secret: str | None) -> str:
    """Text with the secret (if given, also escaped) and every `cg-api-key=`/`CG-API-KEY:` value
    removed, and nothing else: for data kept as it came (an answer's raw page), where the password
    patterns of `redact` could take a URL in a value for one."""
    if secret and len(secret.strip()) >= _MIN_SECRET:
        for form in _secret_forms(secret):
            text = text.replace(form, REDACTED)
    text = _QUERY_KEY.sub(lambda m: m.group(1) + REDACTED, text)
    return _HEADER_KEY.sub(lambda m: m.group(1) + REDACTED, text)


def redact(text: str, secret: str | None = None) -> str:
    """Text with the secret (if given, also escaped) and every `cg-api-key=`/`CG-API-KEY:` value, DSN
    `password=` value and URL userinfo password removed."""
    text = _DSN_PASSWORD.sub(lambda m: m.group(1) + REDACTED, redact_key(text, secret))
    return _USERINFO_PASSWORD.sub(lambda m: m.group(1) + REDACTED + "@", text)


def redact_dsn(dsn: str) -> str:
    """A PostgreSQL DSN (URI or `key=value` form) with its password replaced by <redacted>."""
    if "://" in dsn:
        return redact_url(dsn)
    return _DSN_PASSWORD.sub(lambda m: m.group(1) + REDACTED, dsn)


class RedactingLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Given to websockets as its logger: its DEBUG handshake lines carry the URL with the key."""

    def __init__(self, logger: logging.Logger, secret: str | None = None) -> None:
        super().__init__(logger, {})
        self.secret = secret

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, redact(text, self.secret), **kwargs)
