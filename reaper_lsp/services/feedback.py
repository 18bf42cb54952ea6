"""Suggestions handed to an editor under an id (the uuids of the Copilot methods), so that what
the editor later says about them — shown, accepted, partly accepted, rejected — is counted in
the App's usage tally under the provider and language that produced them. One per session: an
id means nothing to another editor."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from reaper_lsp.core.document import index_to_utf16
from reaper_lsp.services.usage import Usage

MAX_ISSUED = 512
"""Ids remembered; an editor reports on the few it showed last, never on old ones."""


@dataclass(slots=True)
class Issued:
    provider: str
    language: str
    text: str
    shown: bool = False


class SuggestionFeedback:
    """The ids of one session's suggestions, and the tally they feed."""

    def __init__(self, usage: Usage, max_issued: int = MAX_ISSUED) -> None:
        self._usage = usage
        self._max = max_issued
        self._issued: OrderedDict[str, Issued] = OrderedDict()

    def issue(self, provider: str, language: str, text: str) -> str:
        """A new id for `text`, suggested by `provider` in a `language` document."""
        key = str(uuid.uuid4())
        self._issued[key] = Issued(provider, language, text)
        while len(self._issued) > self._max:
            self._issued.popitem(last=False)
        return key

    def shown(self, key: str) -> None:
        """Counted once per id: copilot.vim says it again on every redraw."""
        found = self._issued.get(key)
        if found is not None and not found.shown:
            found.shown = True
            self._usage.feedback("shown", found.provider, found.language)

    def accepted(self, key: str, length: int | None = None) -> None:
        """`length`: UTF-16 units of the text taken, when the editor says; fewer than the
        whole text is a partial accept, which leaves the rest still on offer."""
        found = self._issued.get(key)
        if found is None:
            return
        if length is not None and length < index_to_utf16(found.text, len(found.text)):
            self.partial(key)
            return
        del self._issued[key]
        self._usage.feedback("accepted", found.provider, found.language)

    def partial(self, key: str) -> None:
        found = self._issued.get(key)
        if found is not None:
            self._usage.feedback("partial", found.provider, found.language)

    def rejected(self, keys: Iterable[str]) -> None:
        for key in keys:
            found = self._issued.pop(key, None)
            if found is not None:
                self._usage.feedback("rejected", found.provider, found.language)
