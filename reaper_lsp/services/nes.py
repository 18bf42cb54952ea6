"""NextEditService: next-edit suggestions for one editor session, from every back end — the
recent edits of each open document; the offline engine's proposal when an identifier was
renamed (its other uses); otherwise a chat model's proposal, asked with the next-edit prompt.

Proposals are computed against one version of a document and dropped if it changed before they
were ready. A document excluded by the privacy rules (or a session with remote providers
turned off) gets the offline proposal only: its text never leaves the machine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from reaper_lsp.core.document import Change, Document, Position
from reaper_lsp.core.nes import EditHistory, NextEditProposal, change_to_edit, rename_edits
from reaper_lsp.core.nes_prompt import nes_messages, nes_region, parse_nes_answer
from reaper_lsp.providers.base import LOCAL, ChatMessage
from reaper_lsp.services.chat import ChatService
from reaper_lsp.services.errors import ChatFailed
from reaper_lsp.workspace import Workspace

log = logging.getLogger(__name__)

NES_TIMEOUT = 15.0
"""Seconds a chat model gets to propose next edits; later, the moment has passed."""
NES_MAX_TOKENS = 600


@dataclass(frozen=True, slots=True)
class Proposed:
    """Next edits and who proposed them (`local`: the offline engine)."""

    proposal: NextEditProposal
    provider: str = LOCAL
    language: str = ""


class NextEditService:
    """Next edits for the documents of one session. `may_send(uri)`: whether that document's
    text may go to a remote provider now."""

    def __init__(
        self,
        workspace: Workspace,
        chat: ChatService,
        *,
        may_send: Callable[[str], bool],
        timeout: float = NES_TIMEOUT,
    ) -> None:
        self.workspace = workspace
        self.chat = chat
        self.history = EditHistory()
        self.timeout = timeout
        self._may_send = may_send
        self._asking: dict[str, asyncio.Task[Proposed]] = {}
        self._last: dict[str, tuple[tuple[int, int, int], Proposed]] = {}
        """uri → ((version, line, character), answer): a repeated request costs no call."""

    # -- what the editor tells us -------------------------------------------------------------

    def record(self, uri: str, change: Change, version: int) -> None:
        """Remember the edit `change` makes; call before it is applied to the open document."""
        doc = self.workspace.documents.get(uri)
        if doc is None:
            return
        edit = change_to_edit(doc.lines, change, version)
        if edit is not None:
            self.history.record(uri, edit)

    def forget(self, uri: str) -> None:
        """The document was closed."""
        self.history.forget(uri)
        self._last.pop(uri, None)
        asking = self._asking.pop(uri, None)
        if asking is not None:
            asking.cancel()

    def close(self) -> None:
        """The session ended: its model calls stop."""
        for task in self._asking.values():
            task.cancel()
        self._asking.clear()

    # -- requests -----------------------------------------------------------------------------

    async def suggest(self, uri: str, position: Position, version: int | None = None) -> Proposed:
        """The next edits for the open document at `uri` with the cursor at `position`.
        `version`: the one the editor sees; if ours differs, the proposal would point at other
        text, so there is none. A newer request for the same document answers this one with
        nothing (its model call is cancelled)."""
        asking = self._asking.pop(uri, None)
        if asking is not None:
            asking.cancel()
        doc = self.workspace.documents.get(uri)
        if doc is None or (version is not None and version != doc.version):
            return Proposed(NextEditProposal(doc.version if doc else -1))
        key = (doc.version, position.line, position.character)
        last = self._last.get(uri)
        if last is not None and last[0] == key:
            return last[1]
        task = asyncio.ensure_future(self._propose(doc, position))
        self._asking[uri] = task
        try:
            found = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                task.cancel()
                raise
            return Proposed(NextEditProposal(doc.version), language=doc.language_id)
        finally:
            if self._asking.get(uri) is task:
                del self._asking[uri]
        if self.workspace.documents.get(uri) is not doc or found.proposal.is_stale(doc.version):
            return Proposed(NextEditProposal(doc.version), language=doc.language_id)
        self._last[uri] = (key, found)
        return found

    async def _propose(self, doc: Document, position: Position) -> Proposed:
        """The offline engine's renames first (instant, free); a model only when it has none,
        the user has edited something, and the document may be sent."""
        history = self.history.edits(doc.uri)
        path = self.workspace.relative_path(doc.uri)
        offline = rename_edits(history, doc.lines, doc.version, position, doc.language_id, path)
        if offline.edits or not history:
            return Proposed(offline, LOCAL, doc.language_id)
        if not self._may_send(doc.uri) or not self.chat.remote_usable():
            return Proposed(offline, LOCAL, doc.language_id)
        version, lines = doc.version, list(doc.lines)  # the document changes under the await
        system, user = nes_messages(history, lines, position, doc.language_id, path)
        messages = [ChatMessage("system", system), ChatMessage("user", user)]
        try:
            answer = await self.chat.answer(
                messages, uri=doc.uri, remote_only=True, max_tokens=NES_MAX_TOKENS,
                timeout=self.timeout,
            )  # fmt: skip
        except ChatFailed as exc:
            log.info("next edits: no model answered: %s", exc)
            return Proposed(NextEditProposal(version), LOCAL, doc.language_id)
        edits = parse_nes_answer(answer.text, lines, nes_region(len(lines), position.line))
        if not edits:
            log.debug("next edits: %s proposed nothing usable", answer.provider)
        return Proposed(NextEditProposal(version, tuple(edits)), answer.provider, doc.language_id)
