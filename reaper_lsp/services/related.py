"""What the model sees besides the text around the cursor: snippets of the session's other open
documents, of the workspace files the current one imports, and of distant parts of the current
file — ranked and packed by `core/snippets.py` under `[completion] max_context_chars`, after
the prefix and suffix budgets (what the prompt shows already is never repeated).

Privacy: an excluded document is never a candidate, whether open or imported, and an excluded
current document gets no snippets at all (its own distant parts included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reaper_lsp.core.cache import context_digest
from reaper_lsp.core.document import Document
from reaper_lsp.core.snippets import ContextBuilder, SourceDocument, prompt_lines
from reaper_lsp.core.types import CompletionContext, ContextSnippet
from reaper_lsp.services.imported import ImportedFiles
from reaper_lsp.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Related:
    """The snippets one request shows, best first, and their digest (part of cache keys)."""

    snippets: tuple[ContextSnippet, ...] = ()
    digest: str = ""


NOTHING = Related()


class RelatedCode:
    """Snippets for one session's requests. `excluded(uri)`: the session's privacy rule."""

    def __init__(self, workspace: Workspace, excluded: Callable[[str], bool]) -> None:
        self.workspace = workspace
        self.excluded = excluded
        self.imports = ImportedFiles(workspace, excluded)
        self._builder = ContextBuilder()
        self._known: dict[str, tuple[bool, str]] = {}
        """Per URI: (excluded, the name prompts show) — asked once, not at every keystroke."""

    def reconfigure(self) -> None:
        """The settings changed: the exclusions may have, so every answer is asked again."""
        self._known.clear()
        self.imports.forget()

    def closed(self, uri: str) -> None:
        self._known.pop(uri, None)
        self.imports.forget(uri)

    async def gather(
        self, doc: Document, ctx: CompletionContext, column: int, max_chars: int
    ) -> Related:
        """The snippets for the cursor at `ctx` in `doc` (`column`: its string index in the
        line; the context's line prefix may be cut)."""
        excluded, name = self._about(doc.uri)
        if max_chars <= 0 or excluded or ctx.line < 0:
            return NOTHING
        imported = await self.imports.of(doc)
        current = SourceDocument(doc.uri, name, doc.language_id, doc.version, doc.lines)
        found = self._builder.build(
            current,
            line=ctx.line,
            column=column,
            prompt_lines=prompt_lines(ctx.prefix, ctx.suffix, ctx.line),
            others=self._others(doc.uri),
            imported=imported,
            max_chars=max_chars,
        )
        snippets = tuple(ContextSnippet(s.filename, s.text) for s in found)
        return Related(snippets, context_digest(snippets))

    def _others(self, current: str) -> list[SourceDocument]:
        out = []
        for doc in self.workspace.documents:
            if doc.uri == current:
                continue
            excluded, name = self._about(doc.uri)
            if not excluded:
                out.append(SourceDocument(doc.uri, name, doc.language_id, doc.version, doc.lines))
        return out

    def _about(self, uri: str) -> tuple[bool, str]:
        known = self._known.get(uri)
        if known is None:
            known = self._known[uri] = (self.excluded(uri), self.workspace.relative_path(uri))
        return known
