"""The AI suggestion as one LSP completion-menu item that stock clients insert whole.

Pure: text and capabilities in, an `lsprotocol` `CompletionItem` out. What shaped it, each
found by driving a real client:

- Neovim's `vim.lsp.completion` and `<C-x><C-o>` keep a plain-text `newText` only up to its
  first whitespace; a snippet is expanded whole on accept. So the item is a snippet (with `\\`,
  `$` and `}` escaped) whenever the client says it supports them, plain text otherwise.
- Snippet engines (Neovim's `vim.snippet`, VS Code, yasnippet) re-indent every line after the
  first by the cursor line's indentation, so a snippet carries its lines relative to it and
  stops before a line that leaves the cursor's block (it could not be expressed). A
  suggestion that leaves the closers after the cursor on a line of their own keeps that
  line break (core/postprocess.py never repeats what follows the cursor).
- The edit replaces the word before the cursor with word + suggestion, and the label and filter
  text start with that word, so a client filtering by what was typed keeps the item.
- Emacs's JSON parser rejects NUL, so no string carries a control character other than the
  suggestion's own tabs and newlines.
- ALE (Vim) inserts an item's text only up to its first `(` — its
  `ale#completion#ParseLSPCompletions` takes what follows for a function's arguments — and
  Vim keeps the line breaks of a completed text inside the cursor's line, as NULs. But ALE
  applies the item's `additionalTextEdits` once it is inserted (as it does auto-imports), to
  the buffer as it is then, in byte columns, making real lines. For ALE the item inserts the
  text up to its first `(` or line break and carries the rest as an additional edit right
  after it, so the whole suggestion lands, line by line.
"""

from __future__ import annotations

import re
import unicodedata

from lsprotocol import types as lsp

from reaper_lsp.core.document import index_to_utf16, utf16_to_index

TRIGGER_CHARACTERS: tuple[str, ...] = ()
"""None. Neovim's `autotrigger` asks on trigger characters only, and with the default
`completeopt` (no `noinsert`) a lone item is inserted without being chosen: `" "` turned
`with open(path) ` into `with open(path) as`, and `.` would do the same after `self.`. The menu
item comes when asked (`<C-x><C-o>`, `<C-Space>`, a client's own identifier trigger); unasked
suggestions are ghost text's job."""

SORT_FIRST = "0000"
LABEL_WIDTH = 80

_WORD_TAIL = re.compile(r"[\w$]*\Z")
_SNIPPET_SPECIAL = re.compile(r"[\\$}]")
_LEADING_SPACE = re.compile(r"[ \t]*")


def cuts_at_parenthesis(capabilities: lsp.ClientCapabilities | None, editor: str) -> bool:
    """Whether the client is ALE. It sends no `clientInfo` (`editor` is empty) and is told by
    what its `initialize` alone declares together: no `workspace/applyEdit`, completion
    documentation in plain text only, and `contextSupport` explicitly false."""
    document = capabilities.text_document if capabilities else None
    completion = document.completion if document else None
    item = completion.completion_item if completion else None
    workspace = capabilities.workspace if capabilities else None
    return (
        not editor
        and completion is not None
        and completion.context_support is False
        and item is not None
        and list(item.documentation_format or ()) == [lsp.MarkupKind.PlainText]
        and workspace is not None
        and workspace.apply_edit is False
    )


def snippet_support(capabilities: lsp.ClientCapabilities | None) -> bool:
    """Whether the client declared `completionItem.snippetSupport`."""
    document = capabilities.text_document if capabilities else None
    completion = document.completion if document else None
    item = completion.completion_item if completion else None
    return bool(item and item.snippet_support)


def escape_snippet(text: str) -> str:
    """`text` as an LSP snippet with no tabstops: `\\`, `$` and `}` preceded by a backslash."""
    return _SNIPPET_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def clean(text: str) -> str:
    """`text` with line breaks as `\\n` and no control characters but tab and newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        ch for ch in text if ch in "\t\n" or unicodedata.category(ch) not in ("Cc", "Cs")
    )


def relative_lines(text: str, indent: str) -> str:
    """`text` (inserted after the cursor, on a line indented by `indent`) with `indent` taken
    off every later line, ending before the first non-blank line indented less than that. A
    text ending with a line break and indentation only keeps that line break: the rest of
    the cursor's line (closers the editor inserted) goes on a line of its own there."""
    first, *rest = text.split("\n")
    kept = [first]
    for line in rest:
        if not line.strip():
            kept.append("")
        elif line.startswith(indent):
            kept.append(line[len(indent) :])
        else:
            break
    room_for_the_rest = len(kept) == len(rest) + 1 and len(kept) > 1 and not kept[-1]
    while len(kept) > 1 and not kept[-1]:
        kept.pop()
    if room_for_the_rest:
        kept.append("")
    return "\n".join(kept)


def completion_item(
    line: str,
    position: lsp.Position,
    text: str,
    provider: str,
    model: str = "",
    *,
    snippets: bool,
    rest_after_parenthesis: bool = False,
) -> lsp.CompletionItem | None:
    """The menu item inserting suggestion `text` at `position` (UTF-16) of `line` (the cursor
    line's text, without its terminator); None when nothing is left to insert.
    `rest_after_parenthesis`: for ALE (`cuts_at_parenthesis`), what follows the first `(`
    goes in an additional edit."""
    line = clean(line)
    cursor = utf16_to_index(line, position.character)
    typed = _word_before(line, cursor)
    start = lsp.Position(position.line, index_to_utf16(line, cursor - len(typed)))
    text = clean(text)
    if snippets:
        indent = _LEADING_SPACE.match(line)
        text = relative_lines(text, indent.group(0) if indent else "")
    if not text.strip():
        return None
    full = typed + text
    first_line = full.split("\n", 1)[0]
    label = first_line.strip() or next(part.strip() for part in full.split("\n") if part.strip())
    detail = clean(f"reaper-lsp · {provider}" + (f" ({model})" if model else ""))
    inserted, rest = full, None
    cut = _ale_cut(full) if rest_after_parenthesis and not snippets else 0
    if cut:
        inserted = full[:cut]
        rest = _after(line[: cursor - len(typed)], inserted, position.line, full[cut:])
    return lsp.CompletionItem(
        label=label[:LABEL_WIDTH],
        kind=lsp.CompletionItemKind.Snippet if snippets else lsp.CompletionItemKind.Text,
        detail=detail,
        documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, _fenced(full)),
        sort_text=SORT_FIRST,
        filter_text=first_line if first_line.strip() else label,
        preselect=True,
        insert_text_format=(
            lsp.InsertTextFormat.Snippet if snippets else lsp.InsertTextFormat.PlainText
        ),
        insert_text_mode=(
            lsp.InsertTextMode.AdjustIndentation if snippets else lsp.InsertTextMode.AsIs
        ),
        text_edit=lsp.TextEdit(
            lsp.Range(start, position), escape_snippet(full) if snippets else inserted
        ),
        additional_text_edits=[rest] if rest is not None else None,
    )


def _ale_cut(text: str) -> int:
    """Where ALE's part of `text` ends (0: ALE takes it whole): before the first `(`, which ALE
    would cut at, or before the first line break, which Vim would keep inside the cursor's
    line as a NUL until the buffer is written (ALE's additional edit makes real lines)."""
    cuts = [at for at in (text.find("("), text.find("\n")) if at > 0]
    return min(cuts, default=0)


def _after(before: str, inserted: str, line: int, rest: str) -> lsp.TextEdit:
    """An edit putting `rest` right after `inserted` (inserted after `before` on line `line`),
    in the buffer as it is once ALE inserted it, in ALE's byte columns. Vim keeps the line
    breaks of a completed text inside the cursor's line (as NULs, written out as line breaks),
    so the column counts through them."""
    at = lsp.Position(line, len((before + inserted).encode("utf-8", "surrogatepass")))
    return lsp.TextEdit(lsp.Range(at, at), rest)


def _word_before(line: str, cursor: int) -> str:
    found = _WORD_TAIL.search(line[:cursor])
    return found.group(0) if found else ""


def _fenced(text: str) -> str:
    """A Markdown code block holding `text` verbatim, whatever backticks it contains."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"
