"""CodeActionService: a code action asked for by the editor → the chat chain's answer → the edit
to make, in one session's documents. The text work (prompts, answers into lines) is
`core/actions.py`; this adds the documents, the chat, and where "Write tests" may write.

Edits target only the document the action was offered for, at the version it was offered for,
or a tests file whose real path (links resolved) is inside the project roots: anything else is
refused and the answer returned to the editor instead.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reaper_lsp.core.actions import (
    SYSTEM,
    TITLES,
    Offer,
    action_edit,
    action_prompt,
    append_edit,
    code_of,
    offers,
)
from reaper_lsp.core.document import Document, Position, TextEdit
from reaper_lsp.providers.base import ChatMessage
from reaper_lsp.services.errors import ActionRefused
from reaper_lsp.workspace import Workspace, uri_to_path

if TYPE_CHECKING:  # light to import: the LSP layer names ActionRequest at start-up
    from reaper_lsp.services.chat import ChatPiece, ChatService


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """An action as the editor asks for it (the arguments `offer` put in its command)."""

    action: str
    uri: str
    version: int
    first: int
    last: int
    question: str = ""
    diagnostics: tuple[str, ...] = ()

    @property
    def offer(self) -> Offer:
        return Offer(self.action, self.first, self.last, self.question)


@dataclass(frozen=True, slots=True)
class DocumentChange:
    """Edits of one document, at `version` (None: whatever version the editor has)."""

    uri: str
    version: int | None
    edits: tuple[TextEdit, ...]


@dataclass(frozen=True, slots=True)
class NewFile:
    """A file to create with `text` (only for clients that can create files)."""

    uri: str
    text: str


@dataclass(slots=True)
class Prepared:
    """An action checked and ready to ask: its messages and, for tests, where they go."""

    request: ActionRequest
    messages: list[ChatMessage]
    tests: Path | None = None
    refused: str = ""
    """Why the tests cannot be written to `tests` (the answer is returned instead)."""
    title: str = field(init=False)

    def __post_init__(self) -> None:
        self.title = TITLES[self.request.action]


class CodeActionService:
    """The code actions of one editor session."""

    def __init__(self, workspace: Workspace, chat: ChatService) -> None:
        self.workspace = workspace
        self.chat = chat

    def offered(
        self, uri: str, start: Position, end: Position, *, diagnosed: bool
    ) -> tuple[Document, list[Offer]] | None:
        """The actions for a selection of an open document (None when it is not open)."""
        doc = self.workspace.documents.get(uri)
        if doc is None:
            return None
        return doc, offers(doc, start, end, diagnosed=diagnosed, marker=self.chat.settings.marker)

    def prepare(self, request: ActionRequest) -> Prepared:
        """The action's prompt; `ActionRefused` when it is unknown or the document is not at the
        version it was offered for."""
        if request.action not in TITLES:
            raise ActionRefused(f"unknown code action {request.action!r}")
        doc = self._current(request)
        private = self.chat.policy.private(doc.uri)
        if private:
            raise ActionRefused(f"{TITLES[request.action]}: not sent, {private}")
        name = self.workspace.relative_path(doc.uri)
        path = uri_to_path(doc.uri)
        tests, refused = (None, "")
        if request.action == "tests" and path is not None:
            tests = tests_path(path, self.workspace.roots)
            if not self.workspace.inside(tests):
                refused = f"{tests} is outside the project (a link, or no project root)"
        prompt = action_prompt(request.offer, doc, name, request.diagnostics, str(tests or ""))
        messages = [ChatMessage("system", SYSTEM), ChatMessage("user", prompt)]
        return Prepared(request, messages, tests, refused)

    def answer(self, prepared: Prepared) -> AsyncIterator[ChatPiece]:
        return self.chat.stream(prepared.messages, uri=prepared.request.uri, purpose="action")

    async def change(
        self, prepared: Prepared, answer: str, *, creates: bool
    ) -> DocumentChange | NewFile | None:
        """The edit to make from `answer`; None when it cannot be made (tests with nowhere to
        go: the answer is then the result). `ActionRefused` when the document changed."""
        request = prepared.request
        doc = self._current(request)
        if prepared.tests is None:
            edit = action_edit(request.offer, doc, answer)
            return DocumentChange(doc.uri, doc.version, (edit,))
        if prepared.refused:
            return None
        return await self._tests_change(prepared, prepared.tests, code_of(answer), creates)

    async def _tests_change(
        self, prepared: Prepared, target: Path, code: str, creates: bool
    ) -> DocumentChange | NewFile | None:
        """New tests appended to the existing test file, or a new file where the client can
        create one; None when neither can be done (a file there that cannot be read is never
        taken for a missing one: creating it would write into it)."""
        uri = target.as_uri()
        existing = await self.workspace.document(uri)
        if existing is not None:
            open_version = existing.version if self.workspace.documents.get(uri) else None
            return DocumentChange(uri, open_version, (append_edit(existing, code),))
        if await asyncio.to_thread(os.path.lexists, target):
            prepared.refused = (
                f"{target} exists but cannot be read (not a regular file, or too large)"
            )
            return None
        return NewFile(uri, code + "\n") if creates else None

    def _current(self, request: ActionRequest) -> Document:
        title = TITLES.get(request.action, "Reaper")
        doc = self.workspace.documents.get(request.uri)
        if doc is None:
            raise ActionRefused(f"{title}: the document is no longer open")
        if doc.version != request.version:
            raise ActionRefused(
                f"{title}: the document changed since the action was offered "
                f"(version {request.version}, now {doc.version}); nothing was edited, try again"
            )
        return doc


def tests_path(path: Path, roots: Sequence[Path]) -> Path:
    """Where tests for `path` go: an existing test file if there is one, else the usual name
    for the language (Python's in the project's `tests/` folder when it has one, else beside
    the file)."""
    stem, suffix = path.stem, path.suffix
    if suffix == ".py":
        root = next((r for r in roots if r in path.parents), path.parent)
        candidates = [root / "tests" / f"test_{stem}.py", path.parent / f"test_{stem}.py"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is not None:
            return found
        return candidates[0] if (root / "tests").is_dir() else candidates[1]
    if suffix in (".js", ".ts", ".jsx", ".tsx", ".mjs"):
        return path.with_name(f"{stem}.test{suffix}")
    return path.with_name(f"{stem}_test{suffix}")
