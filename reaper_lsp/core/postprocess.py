"""Turn a model's raw answer into the text to insert at the cursor.

Models pad their answers: markdown fences, a repeat of the code after the cursor, a second
function after the one asked for, a copy of the line above. Each rule below removes one of
those; the result is None when nothing worth showing is left.
"""

from __future__ import annotations

from reaper_lsp.core.document import indentation
from reaper_lsp.core.prompts import CURSOR
from reaper_lsp.core.types import CompletionContext, Multiline

_OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then", "=")
_CLOSERS = ("}", ")", "]", "end", "</")


def _previous_nonblank(prefix: str) -> str:
    """The last non-blank line before the cursor's line."""
    end = prefix.rfind("\n")
    while end > 0:
        start = prefix.rfind("\n", 0, end) + 1
        line = prefix[start:end]
        if line.strip():
            return line
        end = start - 1
    return ""


def _first_nonblank(suffix: str) -> str:
    """The first non-blank line of the suffix after the cursor's line."""
    pos = suffix.find("\n")
    while pos >= 0:
        nxt = suffix.find("\n", pos + 1)
        line = suffix[pos + 1 : nxt if nxt >= 0 else len(suffix)]
        if line.strip():
            return line
        pos = nxt
    return ""


def wants_multiline(ctx: CompletionContext, mode: Multiline) -> bool:
    """Whether a suggestion may span lines: always/never as configured; in auto mode, when
    the cursor starts a block (end of a line ending in an opener) or sits on an empty line."""
    if mode is Multiline.ALWAYS:
        return True
    if mode is Multiline.NEVER:
        return False
    if ctx.line_suffix.strip(" \t)]}\"';,"):
        return False
    head = ctx.line_prefix.rstrip()
    return not head or head.endswith(_OPENERS)


def _strip_fences(text: str) -> str:
    stripped = text.lstrip()
    if stripped.startswith("```"):
        newline = stripped.find("\n")
        text = "" if newline < 0 else stripped[newline + 1 :]
        fence = text.rfind("```")
        if fence >= 0 and not text[fence:].strip("`\n\r\t "):
            text = text[:fence]
    return text


def _block_end(lines: list[str], ctx: CompletionContext) -> int:
    """Index of the first suggestion line that is past the end of the cursor's block."""
    current = ctx.line_prefix + (lines[0] if lines else "")
    base = len(indentation(current)) if current.strip() else len(ctx.line_prefix)
    opens_block = ctx.line_prefix.rstrip().endswith(_OPENERS)
    for i, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        indent = len(indentation(line))
        if indent < base:
            return i
        if indent == base and opens_block and i > 1:
            # The block we opened has ended; keep a closing bracket that ends it.
            return i + 1 if line.strip().startswith(_CLOSERS) else i
    return len(lines)


def _cut_suffix_repeat(text: str, ctx: CompletionContext) -> str:
    """Drop what merely repeats the text after the cursor."""
    line_suffix = ctx.line_suffix
    if "\n" not in text:
        probe = line_suffix.strip()
        for k in range(min(len(text), len(probe)), 0, -1):
            if text.rstrip().endswith(probe[:k]) and (k == len(probe) or k >= 2):
                return text.rstrip()[:-k] if k else text
        return text
    lines = text.split("\n")
    if line_suffix.strip() and lines[0].rstrip().endswith(line_suffix.strip()):
        lines[0] = lines[0].rstrip()[: -len(line_suffix.strip())]
    following = _first_nonblank(ctx.suffix).strip()
    if following:
        for i, line in enumerate(lines[1:], start=1):
            if line.strip() == following:
                lines = lines[:i]
                break
    return "\n".join(lines)


def postprocess(raw: str, ctx: CompletionContext, *, multiline: bool) -> str | None:
    """The text to insert, or None when nothing useful is left."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = _strip_fences(text).replace(CURSOR, "")
    line_prefix = ctx.line_prefix
    if line_prefix.strip() and text.startswith(line_prefix) and len(line_prefix) >= 3:
        text = text[len(line_prefix) :]  # the model repeated the start of the line
    lines = text.split("\n")
    lines = lines[: _block_end(lines, ctx)] if multiline else lines[:1]
    text = "\n".join(lines).rstrip()
    text = _cut_suffix_repeat(text, ctx).rstrip()
    if not text.strip():
        return None
    first_line = (line_prefix + text.split("\n", 1)[0]).strip()
    if first_line and first_line == _previous_nonblank(ctx.prefix).strip():
        return None
    return text


def is_complete(partial: str, ctx: CompletionContext, *, multiline: bool) -> bool:
    """Whether reading more of the stream cannot change the result (so it can be closed)."""
    text = _strip_fences(partial.replace("\r\n", "\n"))
    if not multiline:
        newline = text.find("\n")
        return newline >= 0 and bool(text[:newline].strip())
    lines = text.split("\n")
    if not lines[-1].strip():
        lines.pop()  # the last line's indentation is known once it has a visible character
    return len(lines) > 1 and _block_end(lines, ctx) < len(lines)
