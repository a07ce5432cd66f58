"""How a stream connection ends: the policy close code, the heartbeat timeout, the reconnect
jitter, and the error a refused connection raises (used by session.py)."""

from __future__ import annotations

import random

from websockets.exceptions import ConnectionClosed

from cgpreset.errors import AuthError, CgPresetError, ConfigError, PlanError

POLICY_VIOLATION = 1008  # close code the server uses for a refused key


class HeartbeatTimeout(Exception):
    """Nothing arrived within the heartbeat deadline."""


def default_jitter(delay: float) -> float:
    """"Equal jitter": somewhere between half the delay and the delay."""
    return random.uniform(delay / 2, delay)


def policy_error(reason: str) -> CgPresetError:
    """A 1008 close before any event: the key, the plan, or (with another reason) the URL."""
    text = f"WebSocket closed the connection (1008): {reason or 'policy violation'}"
    low = reason.lower()
    if "plan" in low or "upgrade" in low:
        return PlanError(text)
    if not reason or "key" in low or "auth" in low:
        return AuthError(text)
    return ConfigError(f"{text}; check CGPRESET_WS_URL")


def close_info(exc: ConnectionClosed) -> tuple[int | None, str]:
    frame = exc.rcvd
    if frame is None:
        return None, ""
    return frame.code, frame.reason


def raise_for_status(status: int) -> None:
    """A handshake refused for the key or the plan (401, 403): an AuthError, not a reason to reconnect."""
    if status == 401:
        raise AuthError("WebSocket handshake refused: API key missing or invalid", http_status=401)
    if status == 403:
        raise AuthError("WebSocket handshake refused: key invalid or plan too low", http_status=403)
