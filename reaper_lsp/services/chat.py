"""ChatService: a question (or a list of messages) plus the file and lines it is about → the chat
chain's streamed answer, with the history of each conversation kept and sent again."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TypeGuard

from reaper_lsp.config import ChatSettings
from reaper_lsp.providers.base import ChatMessage, ChatRequest, Role
from reaper_lsp.providers.chain import Chain
from reaper_lsp.providers.errors import ProviderError
from reaper_lsp.services.conversations import Conversations
from reaper_lsp.workspace import Workspace

log = logging.getLogger(__name__)

MAX_FILE_CHARS = 20_000
"""How much of an attached file goes into the prompt."""
_ROLES: tuple[Role, ...] = ("system", "user", "assistant")
CONTINUE = (
    "Your previous answer was cut off. Continue it exactly where it stopped, without repeating "
    "anything or commenting on the interruption."
)
"""Asked of the next provider when one fails in the middle of an answer."""


@dataclass(frozen=True, slots=True)
class ChatPiece:
    provider: str
    text: str


@dataclass(frozen=True, slots=True)
class Lines:
    """Lines of a document, 0-based, `last` included."""

    first: int
    last: int

    @classmethod
    def covering(cls, start_line: int, end_line: int, end_character: int) -> Lines:
        """The whole lines of a selection; one that ends at the start of a line (a line-wise
        selection) does not cover that line."""
        if end_line > start_line and end_character == 0:
            end_line -= 1
        return cls(start_line, end_line)


class ChatService:
    """Chats for one server (or one CLI run); `chain` and `settings` are replaced by the app when
    the configuration changes."""

    def __init__(
        self, workspace: Workspace, chain: Chain, settings: ChatSettings, *, timeout: float
    ) -> None:
        self.workspace = workspace
        self.chain = chain
        self.settings = settings
        self.timeout = timeout
        self.conversations = Conversations(settings.history_chars)

    def reconfigure(self, chain: Chain, settings: ChatSettings, *, timeout: float) -> None:
        self.chain, self.settings, self.timeout = chain, settings, timeout
        self.conversations.budget = settings.history_chars

    async def question(
        self, prompt: str, *, uri: str | None = None, lines: Lines | None = None
    ) -> tuple[str, str]:
        """(what to keep in the history, what to send now) for `prompt` about `uri`: the
        selected lines go into both, the whole file only into the message sent now (the next
        turn attaches the file as it is then)."""
        if not uri:
            return prompt, prompt
        doc = await self.workspace.document(uri)
        if doc is None:
            return prompt, prompt
        name = self.workspace.relative_path(doc.uri)
        kept = prompt
        if lines is not None:
            last = min(lines.last, len(doc.lines) - 1)
            selected = "".join(doc.lines[max(0, lines.first) : last + 1])
            where = f"lines {lines.first + 1}-{last + 1} of {name}"
            kept = f"{prompt}\n\nSelected ({where}):\n```\n{selected.rstrip()}\n```"
        text = doc.text
        if len(text) > MAX_FILE_CHARS and lines is not None:
            # Keep the selection in view: the file window is centred on it.
            start = max(0, len("".join(doc.lines[: lines.first])) - MAX_FILE_CHARS // 2)
            text = text[start : start + MAX_FILE_CHARS]
        return kept, f"{kept}\n\nFile {name}:\n```\n{text[:MAX_FILE_CHARS]}\n```"

    async def messages(
        self,
        prompt: str | None,
        history: Sequence[tuple[str, str]] = (),
        *,
        uri: str | None = None,
        lines: Lines | None = None,
    ) -> list[ChatMessage]:
        """The messages to send without a kept conversation: `history` as (role, content)
        pairs (unknown roles dropped), then `prompt` with the document at `uri` attached."""
        messages = [ChatMessage(role, content) for role, content in history if _is_role(role)]
        if prompt:
            _, sent = await self.question(prompt, uri=uri, lines=lines)
            messages.append(ChatMessage("user", sent))
        return messages

    async def converse(
        self,
        conversation_id: str,
        prompt: str,
        *,
        uri: str | None = None,
        lines: Lines | None = None,
    ) -> AsyncIterator[ChatPiece]:
        """Ask `prompt` in a kept conversation: the earlier turns go upstream with it, and the
        exchange is recorded once the answer is complete (a cancelled or failed answer leaves
        the history as it was)."""
        kept, sent = await self.question(prompt, uri=uri, lines=lines)
        messages = self.conversations.messages(conversation_id, ChatMessage("user", sent))
        parts: list[str] = []
        async for piece in self.stream(messages):
            parts.append(piece.text)
            yield piece
        self.conversations.record(conversation_id, kept, "".join(parts))

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[ChatPiece]:
        """The answer in pieces, from the first chat provider that can give one. A provider
        that fails once text has been streamed is replaced by the next one, asked to continue
        the answer from where it stopped."""
        order = list(self.settings.providers)
        sent = list(messages)
        parts: list[str] = []
        while True:
            provider = ""
            request = ChatRequest(tuple(sent), max_tokens=self.settings.max_tokens)
            try:
                async for provider, piece in self.chain.chat(request, order, timeout=self.timeout):
                    parts.append(piece)
                    yield ChatPiece(provider, piece)
                return
            except ProviderError:
                rest = order[order.index(provider) + 1 :] if provider in order else []
                if not provider or not rest:
                    raise
                log.info("chat: %s failed mid-answer; %s continues it", provider, rest[0])
                order = rest
                sent = [
                    *messages,
                    ChatMessage("assistant", "".join(parts)),
                    ChatMessage("user", CONTINUE),
                ]


def _is_role(role: str) -> TypeGuard[Role]:
    return role in _ROLES
