"""ChatService: a question (or a list of messages) plus the file it is about → the chat chain's
streamed answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TypeGuard

from reaper_lsp.config import ChatSettings
from reaper_lsp.providers.base import ChatMessage, ChatRequest, Role
from reaper_lsp.providers.chain import Chain
from reaper_lsp.workspace import Workspace

MAX_FILE_CHARS = 20_000
"""How much of an attached file goes into the prompt."""
_ROLES: tuple[Role, ...] = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class ChatPiece:
    provider: str
    text: str


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

    def reconfigure(self, chain: Chain, settings: ChatSettings, *, timeout: float) -> None:
        self.chain, self.settings, self.timeout = chain, settings, timeout

    async def messages(
        self,
        prompt: str | None,
        history: Sequence[tuple[str, str]] = (),
        *,
        uri: str | None = None,
    ) -> list[ChatMessage]:
        """The messages to send: `history` as (role, content) pairs (unknown roles dropped),
        then `prompt` with the document at `uri` attached."""
        messages = [ChatMessage(role, content) for role, content in history if _is_role(role)]
        if prompt:
            if uri:
                doc = await self.workspace.document(uri)
                if doc is not None:
                    name = self.workspace.relative_path(doc.uri)
                    prompt = f"{prompt}\n\nFile {name}:\n```\n{doc.text[:MAX_FILE_CHARS]}\n```"
            messages.append(ChatMessage("user", prompt))
        return messages

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[ChatPiece]:
        """The answer in pieces, from the first chat provider that can give one."""
        request = ChatRequest(tuple(messages), max_tokens=self.settings.max_tokens)
        async for name, piece in self.chain.chat(
            request, self.settings.providers, timeout=self.timeout
        ):
            yield ChatPiece(name, piece)


def _is_role(role: str) -> TypeGuard[Role]:
    return role in _ROLES
