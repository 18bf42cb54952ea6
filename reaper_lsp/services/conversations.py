"""Conversation history: the turns of each chat kept per conversation id, cut to a character
budget (oldest exchanges dropped first, the system prompt never), and saved to or loaded from
JSON for the terminal chat's `--continue`."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reaper_lsp.providers.base import ChatMessage

MAX_CONVERSATIONS = 64
"""Conversations kept at once; the least recently used one is forgotten first."""
_TITLE_CHARS = 60


@dataclass(slots=True)
class Conversation:
    id: str
    system: str = ""
    turns: list[ChatMessage] = field(default_factory=list)
    """User and assistant messages, oldest first."""
    updated: float = 0.0

    @property
    def title(self) -> str:
        """The first question, on one line and short (for lists)."""
        first = next((t.content for t in self.turns if t.role == "user"), "")
        line = " ".join(first.split())
        return line if len(line) <= _TITLE_CHARS else line[: _TITLE_CHARS - 1] + "…"


def fit(turns: Sequence[ChatMessage], budget: int, reserve: int = 0) -> list[ChatMessage]:
    """The newest turns whose content (plus `reserve` characters for what comes after them)
    fits `budget`, cut only before a user message so no answer is sent without its question."""
    kept: list[ChatMessage] = []
    used = reserve
    for turn in reversed(turns):
        used += len(turn.content)
        if used > budget:
            break
        kept.append(turn)
    kept.reverse()
    while kept and kept[0].role != "user":
        kept.pop(0)
    return kept


class Conversations:
    """Every conversation of one server (or terminal), newest use last."""

    def __init__(
        self,
        budget: int,
        *,
        limit: int = MAX_CONVERSATIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.budget = budget
        self.limit = limit
        self._clock = clock
        self._all: OrderedDict[str, Conversation] = OrderedDict()

    def get(self, conversation_id: str) -> Conversation:
        conversation = self._all.get(conversation_id)
        if conversation is None:
            conversation = Conversation(conversation_id, updated=self._clock())
            self._all[conversation_id] = conversation
            while len(self._all) > self.limit:
                self._all.popitem(last=False)
        self._all.move_to_end(conversation_id)
        return conversation

    def messages(
        self, conversation_id: str, current: ChatMessage, budget: int | None = None
    ) -> list[ChatMessage]:
        """What to send for `current`: the system prompt, as much history as the budget (this
        one's, or `budget` when the asking session has its own) allows, then `current`
        (always sent whole)."""
        conversation = self.get(conversation_id)
        system = [ChatMessage("system", conversation.system)] if conversation.system else []
        reserve = len(conversation.system) + len(current.content)
        limit = self.budget if budget is None else budget
        return [*system, *fit(conversation.turns, limit, reserve), current]

    def record(
        self, conversation_id: str, question: str, answer: str, budget: int | None = None
    ) -> None:
        """Add one exchange; the stored turns are trimmed to the budget as well."""
        conversation = self.get(conversation_id)
        conversation.turns.append(ChatMessage("user", question))
        conversation.turns.append(ChatMessage("assistant", answer))
        conversation.turns = fit(conversation.turns, self.budget if budget is None else budget)
        conversation.updated = self._clock()

    def reset(self, conversation_id: str) -> bool:
        """Forget a conversation; False when there was none."""
        return self._all.pop(conversation_id, None) is not None

    def summaries(self) -> list[dict[str, object]]:
        """One JSON object per conversation, most recently used first."""
        return [
            {
                "conversationId": c.id,
                "title": c.title,
                "turns": len(c.turns),
                "updated": round(c.updated, 3),
            }
            for c in reversed(self._all.values())
        ]

    def to_json(self, conversation_id: str) -> dict[str, Any]:
        conversation = self.get(conversation_id)
        return {
            "id": conversation.id,
            "system": conversation.system,
            "updated": conversation.updated,
            "turns": [{"role": t.role, "content": t.content} for t in conversation.turns],
        }

    def load(self, data: object, conversation_id: str) -> str | None:
        """Take in a conversation saved by `to_json` as `conversation_id`; its id, or None when
        `data` is not one (a damaged file starts a new conversation rather than failing)."""
        if not isinstance(data, dict) or not isinstance(data.get("turns", []), list):
            return None
        turns: list[ChatMessage] = []
        for turn in data.get("turns") or ():
            if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
                continue
            if turn.get("role") == "user":
                turns.append(ChatMessage("user", turn["content"]))
            elif turn.get("role") == "assistant":
                turns.append(ChatMessage("assistant", turn["content"]))
        conversation = self.get(conversation_id)
        system = data.get("system")
        conversation.system = system if isinstance(system, str) else ""
        conversation.turns = fit(turns, self.budget)
        updated = data.get("updated")
        if isinstance(updated, int | float) and not isinstance(updated, bool):
            conversation.updated = float(updated)
        return conversation.id
