"""Turn one HTTP answer into `data` or a classified ApiError.

CoinGlass puts an error in the body's `code` (a string; "0" is success), mostly over HTTP 200.
"""

from __future__ import annotations

from typing import Any

import msgspec

from cgpreset.errors import (
    ApiError,
    AuthError,
    CutAnswerError,
    InvalidParameterError,
    MalformedResponseError,
    NotFoundError,
    PlanError,
    RateLimitedError,
    ServerError,
    UnsupportedPairError,
)

_MAX_MSG = 200


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MSG else text[: _MAX_MSG - 1] + "…"


def classify(
    *,
    path: str,
    http_status: int,
    code: str | None,
    msg: str,
    retry_after: float | None = None,
) -> ApiError:
    """Classify a failure by body code first, then by message text, then by HTTP status.

    Wording changed between 2025 and 2026, so messages are matched on stable substrings.
    """
    low = msg.lower()
    kw: dict[str, Any] = {"path": path, "code": code, "http_status": http_status, "retry_after": retry_after}
    text = _short(msg) or "no message"
    # Message text is the most specific signal: "400" means rate limit, bad key or bad param.
    if "too many" in low or http_status == 429 or code == "429":
        return RateLimitedError(text, **kw)
    if "api key" in low:
        return AuthError(text, **kw)
    if "upgrade" in low or "not available for your current api plan" in low or code == "403":
        return PlanError(text, **kw)
    if "pair does not exist" in low or ("not supported" in low and "pair" in low):
        return UnsupportedPairError(text, **kw)
    if "parameter" in low or code == "422":
        return InvalidParameterError(text, **kw)
    if "endpoint not found" in low or code == "404" or http_status == 404:
        return NotFoundError(text, **kw)
    if http_status == 403:
        return PlanError(text, **kw)
    if code == "401" or http_status == 401:
        return AuthError(text, **kw)
    if code == "500" or "server error" in low or http_status >= 500 or code == "408" or http_status == 408:
        return ServerError(text, **kw)
    if code == "400" or http_status == 400:
        return InvalidParameterError(text, **kw)
    if code == "405":
        return NotFoundError(text, **kw)
    return ServerError(text, **kw)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class _Envelope(msgspec.Struct):
    """The envelope with `data` left as JSON text: its rows are decoded by their own typed decoder."""

    code: Any = None
    msg: Any = None
    data: msgspec.Raw = msgspec.Raw(b"")  # b"": no `data` key at all


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def unwrap(*, path: str, http_status: int, body: bytes, headers: Any = None) -> Any:
    """Return `data` from a successful envelope (as Python objects); raise a classified ApiError otherwise.

    Success is HTTP 200 **and** str(code) == "0"; `msg` is optional.
    """
    return msgspec.json.decode(unwrap_raw(path=path, http_status=http_status, body=body, headers=headers))


def unwrap_raw(*, path: str, http_status: int, body: bytes, headers: Any = None) -> bytes:
    """As `unwrap`, but `data` stays the JSON text the API sent (decoded later, typed, in C)."""
    retry_after = _retry_after(headers)
    payload: _Envelope | None = None
    try:
        payload = _ENVELOPE.decode(body) if body else None
    except msgspec.ValidationError:  # valid JSON, but not an object envelope (or a non-string-keyed one)
        payload = None
    except msgspec.DecodeError:
        if http_status == 200:
            snippet = body[:80].decode("utf-8", "replace")
            html = snippet.lstrip().lower().startswith("<")
            error = MalformedResponseError if html else CutAnswerError
            kind = "an HTML page" if html else "invalid JSON"
            raise error(f"expected JSON, got {kind}: {_short(snippet)!r}", path=path,
                        http_status=http_status) from None
    if payload is None:
        if http_status != 200:
            return bytes(_raise(classify(path=path, http_status=http_status, code=None,
                                         msg=_describe_body(body), retry_after=retry_after)))
        raise MalformedResponseError("expected a JSON object envelope with `code`", path=path,
                                     http_status=http_status)
    code = payload.code
    code_s = None if code is None else str(code)
    msg = payload.msg
    msg_s = msg if isinstance(msg, str) else ("" if msg is None else str(msg))
    if http_status == 200 and code_s == "0":
        if not bytes(payload.data):
            raise MalformedResponseError("envelope has code 0 but no `data`", path=path, code=code_s,
                                         http_status=http_status)
        return bytes(payload.data)
    if http_status == 200 and code_s is None:
        raise MalformedResponseError("envelope has no `code`", path=path, http_status=http_status)
    return bytes(_raise(classify(path=path, http_status=http_status, code=code_s, msg=msg_s or "no message",
                                 retry_after=retry_after)))


def _describe_body(body: bytes) -> str:
    """A short, human description of a non-envelope error body (the status is added by the error)."""
    text = body[:200].decode("utf-8", "replace").strip()
    if not text:
        return "empty body"
    if text.startswith("<"):
        return "an HTML error page"
    return _short(text)


def _raise(err: ApiError) -> Any:
    raise err
