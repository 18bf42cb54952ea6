"""Figures from the audit log alone (`reaper-lsp stats`): per provider and language, how many
requests went upstream and how many failed, the tokens the providers reported, how many
suggestions the editors showed and how many of those were accepted, and how long the requests
took. Nothing here is sent anywhere: the log is the user's own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reaper_lsp.net.metrics import percentile
from reaper_lsp.services.audit import FEEDBACK, REQUEST

ANSWERED = ("ok", "stopped")
"""Outcomes whose latency is an answer's (a cancelled request tells nothing about speed)."""
_FEEDBACK_KINDS = ("shown", "accepted", "partial", "rejected")


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(slots=True)
class Row:
    provider: str
    language: str
    requests: int = 0
    failed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    shown: int = 0
    accepted: int = 0
    partial: int = 0
    rejected: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def acceptance(self) -> float | None:
        """Accepted (wholly or in part) per suggestion shown; editors that report no "shown"
        are measured against what they accepted and rejected."""
        taken = self.accepted + self.partial
        seen = self.shown or taken + self.rejected
        return round(taken / seen, 3) if seen else None

    def latency(self, fraction: float) -> float | None:
        return round(percentile(self.latencies, fraction), 1) if self.latencies else None

    def add(self, line: Mapping[str, Any]) -> None:
        if line.get("event", REQUEST) == FEEDBACK:
            kind = line.get("kind")
            if kind in _FEEDBACK_KINDS:
                setattr(self, str(kind), getattr(self, str(kind)) + 1)
            return
        self.requests += 1
        outcome = str(line.get("outcome", ""))
        self.failed += outcome.startswith("error")
        tokens = line.get("tokens")
        if isinstance(tokens, Mapping):
            self.tokens_in += _count(tokens.get("in"))
            self.tokens_out += _count(tokens.get("out"))
        latency = line.get("latencyMs")
        if outcome in ANSWERED and isinstance(latency, int | float):
            self.latencies.append(float(latency))

    def to_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "language": self.language,
            "requests": self.requests,
            "failed": self.failed,
            "tokensIn": self.tokens_in,
            "tokensOut": self.tokens_out,
            "shown": self.shown,
            "accepted": self.accepted,
            "partial": self.partial,
            "rejected": self.rejected,
            "acceptance": self.acceptance,
            "latencyMsP50": self.latency(0.5),
            "latencyMsP90": self.latency(0.9),
        }


def tally(lines: Iterable[Mapping[str, Any]]) -> list[Row]:
    """One row per (provider, language) the log mentions, sorted."""
    rows: dict[tuple[str, str], Row] = {}
    for line in lines:
        key = (str(line.get("provider") or "?"), str(line.get("language") or ""))
        row = rows.get(key)
        if row is None:
            row = rows[key] = Row(*key)
        row.add(line)
    return [rows[key] for key in sorted(rows)]
