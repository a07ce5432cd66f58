"""A transport failure's real cause, whole: what a one-line error ends with."""

from __future__ import annotations

import re

from cgpreset.redact import redact


def transport_cause(exc: BaseException, secret: str | None = None) -> str:
    """The innermost cause of a transport failure, whole (`ConnectionRefusedError: [Errno 111]
    Connection refused`): requests wraps urllib3's MaxRetryError, which wraps NewConnectionError,
    which wraps the socket's error, and the outer texts (pool, object addresses) say nothing."""
    inner, seen = exc, {id(exc)}
    while True:
        reason = getattr(inner, "reason", None)
        nxt = reason if isinstance(reason, BaseException) else next(
            (a for a in inner.args if isinstance(a, BaseException)), None) or inner.__cause__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        inner = nxt
    text = re.sub(r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*", "", str(inner)).strip()
    return redact(f"{type(inner).__name__}: {text}" if text else type(inner).__name__, secret)
