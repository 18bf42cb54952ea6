"""ChatService: a question (or a list of messages) plus the file and lines it is about → the chat
chain's streamed answer, for one editor session; the conversations it keeps are the App's, shared
by every session (and saved to a file by the terminal chat)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeGuard

from reaper_lsp.core.actions import attach_file
from reaper_lsp.providers.base import LOCAL, ChatMessage, ChatRequest, Provider, Purpose, Role
from reaper_lsp.providers.chain import Chain
from reaper_lsp.providers.errors import ProviderError
from reaper_lsp.services.conversations import Conversations
from reaper_lsp.services.errors import ChatFailed
from reaper_lsp.services.privacy import Policy, default_policy
from reaper_lsp.settings import ChatSettings
from reaper_lsp.workspace import Workspace

log = logging.getLogger(__name__)

_ROLES: tuple[Role, ...] = ("system", "user", "assistant")


class ChatShared(Protocol):
    """What a chat needs of the App (whose parts may be rebuilt at any time)."""

    @property
    def chain(self) -> Chain: ...

    @property
    def conversations(self) -> Conversations: ...


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
    """The chats of one editor session (or one terminal). `settings` are replaced by the session
    when its configuration changes."""

    def __init__(
        self,
        shared: ChatShared,
        workspace: Workspace,
        local: Provider,
        settings: ChatSettings,
        *,
        timeout: float,
        editor: str = "",
        policy: Policy | None = None,
    ) -> None:
        """`policy`: what may leave the machine (the session's)."""
        self.shared = shared
        self.workspace = workspace
        self.local = local
        self.settings = settings
        self.timeout = timeout
        self.editor = editor
        self.policy = policy or default_policy(workspace, editor)

    @property
    def conversations(self) -> Conversations:
        return self.shared.conversations

    def reconfigure(self, settings: ChatSettings, *, timeout: float) -> None:
        self.settings, self.timeout = settings, timeout

    async def question(
        self, prompt: str, *, uri: str | None = None, lines: Lines | None = None
    ) -> tuple[str, str]:
        """(what to keep in the history, what to send now) for `prompt` about `uri`: the
        selected lines go into both, the whole file only into the message sent now (the next
        turn attaches the file as it is then). A file that must never leave the machine is
        not attached, and the message says so instead."""
        if not uri:
            return prompt, prompt
        excluded = self.policy.excluded_by(uri)
        if excluded:
            note = f"(No file is attached: {excluded}.)"
            return f"{prompt}\n\n{note}", f"{prompt}\n\n{note}"
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
        around = lines.first if lines is not None else None
        return kept, f"{kept}\n\n{attach_file(doc, name, around)}"

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
        budget = self.settings.history_chars
        messages = self.conversations.messages(conversation_id, ChatMessage("user", sent), budget)
        parts: list[str] = []
        attached = len(sent.encode()) - len(kept.encode())
        async for piece in self.stream(messages, uri=uri or "", attached=attached):
            parts.append(piece.text)
            yield piece
        self.conversations.record(conversation_id, kept, "".join(parts), budget)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        uri: str = "",
        purpose: Purpose = "chat",
        attached: int = 0,
        remote_only: bool = False,
        max_tokens: int | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[ChatPiece]:
        """The answer in pieces, from the chat chain (which decides every fallback);
        `ChatFailed` when no provider could answer, or none may be asked. `uri`: the document
        the messages are about; `attached`: bytes of it they carry; `remote_only`: without the
        offline engine, whose help text answers no question a program parses."""
        refused = self.policy.remote_off()
        if refused:
            raise ChatFailed(f"not asked: {refused}; the offline engine cannot chat")
        prompt = "".join(m.content for m in messages)
        origin = self.policy.origin(purpose, uri, prefix=prompt)
        # A chat about an excluded file goes without it (`question` left it out); an action
        # carries its document, so its origin keeps the rule: no remote provider sends it.
        private = "" if purpose == "chat" else origin.private
        origin = replace(origin, context_bytes=attached, private=private)
        request = ChatRequest(
            tuple(messages), max_tokens=max_tokens or self.settings.max_tokens,
            editor=self.editor, origin=origin,
        )  # fmt: skip
        order = self.settings.providers
        if remote_only:
            order = tuple(name for name in order if name != LOCAL)
        chat = self.shared.chain.chat(
            request,
            order,
            local=None if remote_only else self.local,
            timeout=self.timeout if timeout is None else timeout,
        )
        try:
            async for provider, piece in chat:
                yield ChatPiece(provider, piece)
        except ProviderError as exc:
            raise ChatFailed(str(exc)) from None

    async def answer(
        self,
        messages: Sequence[ChatMessage],
        *,
        uri: str = "",
        purpose: Purpose = "next-edit",
        remote_only: bool = False,
        max_tokens: int | None = None,
        timeout: float | None = None,
    ) -> ChatPiece:
        """The whole answer at once, for callers that parse it (next-edit suggestions); the
        provider is the one that finished it."""
        provider, parts = "", []
        pieces = self.stream(
            messages, uri=uri, purpose=purpose, remote_only=remote_only, max_tokens=max_tokens,
            timeout=timeout,
        )  # fmt: skip
        async for piece in pieces:
            provider = piece.provider
            parts.append(piece.text)
        return ChatPiece(provider, "".join(parts))

    def remote_usable(self) -> bool:
        """Whether a remote chat provider could be asked now."""
        return any(name != LOCAL for name in self.shared.chain.usable(self.settings.providers))


def _is_role(role: str) -> TypeGuard[Role]:
    return role in _ROLES
