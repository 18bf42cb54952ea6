"""Alternatives to a suggestion, for the editors that show several (the Copilot panels and
cycling): what each provider of the chain answers at the cursor, asked one at a time in chain
order. Nothing is made up: a provider that answers the same text adds nothing."""

from __future__ import annotations

from reaper_lsp.core.document import Position
from reaper_lsp.core.types import Suggestion
from reaper_lsp.providers.base import LOCAL
from reaper_lsp.services.completion import CompletionService


async def alternatives(
    service: CompletionService,
    uri: str,
    position: Position,
    first: Suggestion | None,
    *,
    limit: int,
    remote: bool,
    local: bool = True,
) -> list[Suggestion]:
    """Up to `limit` distinct suggestions at `position`: `first` (the one the editor already
    has), then the other providers' answers until `limit` are found — only as many upstream
    calls as needed, and only when the user asked for more. `remote` / `local`: whether remote
    providers / the offline engine may be asked (privacy rules decide)."""
    found = [first] if first is not None and first.text else []
    doc = await service.workspace.document(uri)
    if doc is None:
        return found
    if remote:  # several from one call where the first provider can give them
        for several in await service.alternatives(uri, position, count=limit):
            if all(s.text != several.text for s in found):
                found.append(several)
    ctx = service.context_at(doc, position)
    related = await service.related_at(doc, ctx, position)
    chain = service.chain
    for name in chain.usable(service.settings.providers):
        if len(found) >= limit:
            break
        allowed = local if name == LOCAL else remote
        if not allowed or any(s.provider == name for s in found):
            continue
        request, shaper = service.request_for(ctx, related)
        result = await chain.complete(
            request,
            [] if name == LOCAL else [name],
            shaper,
            local=service.local if name == LOCAL else None,
            timeout=service.settings.timeout_ms / 1000,
        )
        other = result.suggestion
        if other is not None and other.text and all(s.text != other.text for s in found):
            found.append(other)
    return found
