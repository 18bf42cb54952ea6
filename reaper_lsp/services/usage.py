"""What happened to the suggestions shown: how many an editor reported shown, accepted (whole or
in part) and rejected, by provider and language. Kept in memory for the App, and told to a
listener (the audit log, from which `reaper-lsp stats` computes acceptance); the numbers are the
user's own and go nowhere else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Feedback = Literal["shown", "accepted", "partial", "rejected"]


@dataclass(slots=True)
class Tally:
    shown: int = 0
    accepted: int = 0
    partial: int = 0
    rejected: int = 0

    def to_json(self) -> dict[str, int]:
        return {"shown": self.shown, "accepted": self.accepted, "partial": self.partial,
                "rejected": self.rejected}  # fmt: skip


class Usage:
    """Feedback on suggestions, by (provider, language)."""

    def __init__(self, listener: Callable[[Feedback, str, str], None] | None = None) -> None:
        self.tallies: dict[tuple[str, str], Tally] = {}
        self._listener = listener

    def feedback(self, kind: Feedback, provider: str, language: str) -> None:
        tally = self.tallies.setdefault((provider, language), Tally())
        setattr(tally, kind, getattr(tally, kind) + 1)
        if self._listener is not None:
            self._listener(kind, provider, language)

    def snapshot(self) -> dict[str, dict[str, dict[str, int]]]:
        """provider → language → counts."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (provider, language), tally in sorted(self.tallies.items()):
            out.setdefault(provider, {})[language] = tally.to_json()
        return out
