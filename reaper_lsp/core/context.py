"""Cut the prompt (text before the cursor) and suffix (text after it) out of a document.

Work is proportional to the budgets, not to the document: lines are taken outwards from the
cursor line until the next whole line would exceed the budget. The cursor's own line is kept
whole on both sides unless it alone is longer than the budget (minified files), in which case
the characters nearest the cursor are kept.
"""

from __future__ import annotations

from reaper_lsp.core.document import Document, Position, split_lines
from reaper_lsp.core.types import CompletionContext


def build_context(
    doc: Document,
    position: Position,
    *,
    max_prefix_chars: int,
    max_suffix_chars: int,
    path: str,
) -> CompletionContext:
    line, index = doc.clamp(position)
    lines = doc.lines
    current = lines[line]
    head = current[:index]
    tail = current[index:]
    if len(head) > max_prefix_chars:
        head = head[len(head) - max_prefix_chars :] if max_prefix_chars > 0 else ""
    if len(tail) > max_suffix_chars:
        tail = tail[:max_suffix_chars] if max_suffix_chars > 0 else ""

    before: list[str] = []
    used = len(head)
    i = line - 1
    while i >= 0:
        size = len(lines[i])
        if used + size > max_prefix_chars:
            break
        before.append(lines[i])
        used += size
        i -= 1
    before.reverse()

    after = [tail]
    used = len(tail)
    i = line + 1
    while i < len(lines):
        size = len(lines[i])
        if used + size > max_suffix_chars:
            break
        after.append(lines[i])
        used += size
        i += 1

    return CompletionContext(
        prefix="".join(before) + head,
        suffix="".join(after),
        language=doc.language_id,
        path=path,
        uri=doc.uri,
        line=line,
    )


def cut_prefix(text: str, max_prefix_chars: int) -> str:
    """`text` (everything before a cursor) cut to the budget exactly as `build_context` cuts a
    document: the cursor's line kept (its end, if alone too long), then whole lines before it
    while they fit. Cutting an already-cut prefix plus more typed text gives the window the
    document itself would give."""
    lines = split_lines(text)
    head = lines.pop()  # the cursor's line: split_lines always ends with it
    if len(head) > max_prefix_chars:
        head = head[len(head) - max_prefix_chars :] if max_prefix_chars > 0 else ""
    used = len(head)
    before: list[str] = []
    for line in reversed(lines):
        if used + len(line) > max_prefix_chars:
            break
        before.append(line)
        used += len(line)
    before.reverse()
    return "".join(before) + head
