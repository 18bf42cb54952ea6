"""The short-lived Copilot token minted from a GitHub sign-in: what it holds and how its
refresh time is computed from GitHub's answer. Pure."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_PROXY = "https://copilot-proxy.githubusercontent.com"
DEFAULT_API = "https://api.githubcopilot.com"
REFRESH_MARGIN = 60.0
"""Seconds ahead of `refresh_in` a token is re-minted, and before `expires_at` it is no longer
handed out (both shrink for tokens that live only a few minutes)."""
CLOCK_SKEW_TOLERANCE = 60.0


@dataclass(frozen=True, slots=True)
class CopilotToken:
    token: str = field(repr=False)
    expires_at: float
    """Unix time, on this machine's clock (corrected when it disagrees with GitHub's)."""
    refresh_at: float
    proxy_url: str
    """Base of the completions endpoint (`endpoints.proxy`)."""
    api_url: str
    """Base of the chat endpoint (`endpoints.api`)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "expires_at": self.expires_at,
            "refresh_at": self.refresh_at,
            "proxy_url": self.proxy_url,
            "api_url": self.api_url,
        }


def fingerprint(secret: str) -> str:
    """Ties a cached Copilot token to the GitHub token it was minted with (not reversible)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def margin(token: CopilotToken) -> float:
    return min(REFRESH_MARGIN, max(0.0, token.expires_at - token.refresh_at) / 2)


def token_from(
    data: dict[str, Any], token: str, expires_at: float, date: str | None, now: float
) -> CopilotToken:
    """The token from GitHub's answer `data`, its expiry kept on this machine's clock."""
    if date:  # keep expiry on our clock when it disagrees with GitHub's
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            skew = now - email.utils.parsedate_to_datetime(date).timestamp()
            if abs(skew) > CLOCK_SKEW_TOLERANCE:
                log.warning("this machine's clock is %.0f s off GitHub's", skew)
                expires_at += skew
    life = max(0.0, expires_at - now)
    try:
        refresh_in = float(data.get("refresh_in") or 0)
    except (TypeError, ValueError):
        refresh_in = 0.0
    if refresh_in <= 0:
        refresh_in = life - min(300.0, life / 5)
    refresh_in = min(refresh_in, life)
    raw_endpoints = data.get("endpoints")
    endpoints: dict[str, Any] = raw_endpoints if isinstance(raw_endpoints, dict) else {}
    return CopilotToken(
        token=token,
        expires_at=expires_at,
        refresh_at=now + max(0.0, refresh_in - min(REFRESH_MARGIN, refresh_in / 2)),
        proxy_url=str(endpoints.get("proxy") or DEFAULT_PROXY).rstrip("/"),
        api_url=str(endpoints.get("api") or DEFAULT_API).rstrip("/"),
    )
