"""Turn a model's raw answer into the text to insert at the cursor.

Models pad their answers: markdown fences, a repeat of the code after the cursor, a second
function after the one asked for, a copy of the line above. Each rule below removes one of
those; the result is None when nothing worth showing is left.

Whatever the client, the suggestion is inserted at the cursor and the rest of the line stays
after it: so it never ends with what follows the cursor (closers an editor inserted in pairs,
the rest of the line the model wrote again), single-line or not. Such a suggestion may end
with a line break and indentation, where the rest of the line is to go.
"""

from __future__ import annotations

from collections.abc import Iterable

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


_CLOSING = {")": "(", "]": "[", "}": "{"}
_QUOTES = "\"'`"


def _string_end(text: str, start: int, quote: str) -> int | None:
    """Where the string that `quote` opened before `start` ends in `text`; None when it does
    not end on its line (a backtick string may span lines)."""
    at = start
    while at < len(text):
        char = text[at]
        if char == "\\":
            at += 2
            continue
        if char == quote:
            return at
        if char == "\n" and quote != "`":
            return None
        at += 1
    return None


def _open_quote(line_prefix: str) -> str:
    """The quote of a string the cursor is inside of ("" when outside one)."""
    at = 0
    while at < len(line_prefix):
        char = line_prefix[at]
        if char in _QUOTES:
            end = _string_end(line_prefix, at + 1, char)
            if end is None:
                return char
            at = end
        at += 1
    return ""


def _closing(text: str, line_prefix: str) -> set[int]:
    """Where `text` (inserted after `line_prefix`) closes a bracket or a string opened before
    the cursor — what an editor that pairs brackets has put after the cursor already."""
    out: set[int] = set()
    at = 0
    pending = _open_quote(line_prefix)
    if pending:
        end = _string_end(text, 0, pending)
        if end is None:
            return out
        out.add(end)
        at = end + 1
    depth: list[str] = []
    while at < len(text):
        char = text[at]
        if char in _QUOTES:
            # A string's brackets are no code; one left open ends with its line.
            end = _string_end(text, at + 1, char)
            if end is None:
                newline = text.find("\n", at)
                end = len(text) if newline < 0 else newline
            at = end + 1
            continue
        if char in "([{":
            depth.append(char)
        elif char in _CLOSING:
            if depth:
                depth.pop()
            else:
                out.add(at)
        at += 1
    return out


def _cut_rest_of_line(text: str, ctx: CompletionContext) -> str:
    """`text` without the end that repeats the start of the rest of the cursor's line: the
    closers an editor inserted in pairs, or the whole rest the model wrote again. A closer is
    cut only where it closes what was opened before the cursor (`f(x)` before `)` stays)."""
    rest = ctx.line_suffix.strip()
    body = text.rstrip()
    if not rest or not body:
        return text
    closing = _closing(body, ctx.line_prefix)
    for k in range(min(len(body), len(rest)), 0, -1):
        if not body.endswith(rest[:k]):
            continue
        start = len(body) - k
        closers = [
            at for at in range(start, len(body)) if body[at] in _CLOSING or body[at] in _QUOTES
        ]
        if closers and all(at in closing for at in closers):
            return body[:start]
        if not closers and k == len(rest) and k >= 2:
            return body[:start]
    return text


def _cut_suffix_repeat(text: str, ctx: CompletionContext) -> str:
    """Drop what merely repeats the text after the cursor. A multi-line suggestion whose
    first line already ends the cursor's line (the model rewrote its rest) is cut to that
    line: its other lines would land before the rest of the line. One that ends with the
    closers after the cursor loses them, but keeps the line break before them, so they stay
    on a line of their own, as the model wrote them."""
    if "\n" not in text:
        return _cut_rest_of_line(text, ctx)
    lines = text.split("\n")
    first = _cut_rest_of_line(lines[0], ctx)
    if first != lines[0] and ctx.line_suffix.strip():
        return first
    following = _first_nonblank(ctx.suffix).strip()
    if following:
        for i, line in enumerate(lines[1:], start=1):
            if line.strip() == following:
                lines = lines[:i]
                break
    return _cut_rest_of_line("\n".join(lines).rstrip(), ctx)


def postprocess(raw: str, ctx: CompletionContext, *, multiline: bool) -> str | None:
    """The text to insert, or None when nothing useful is left."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = _strip_fences(text).replace(CURSOR, "")
    line_prefix = ctx.line_prefix
    if line_prefix.strip() and text.startswith(line_prefix) and len(line_prefix) >= 3:
        text = text[len(line_prefix) :]  # the model repeated the start of the line
    lines = text.split("\n")
    lines = lines[: _block_end(lines, ctx)] if multiline else lines[:1]
    text = _cut_suffix_repeat("\n".join(lines).rstrip(), ctx)
    if not text.strip():
        return None
    first_line = (line_prefix + text.split("\n", 1)[0]).strip()
    if first_line and first_line == _previous_nonblank(ctx.prefix).strip():
        return None
    return text


def distinct(texts: Iterable[str]) -> list[str]:
    """Alternatives worth offering, in order: no repeat, and none that is the start of one
    kept already (accepting part of that one gives it)."""
    kept: list[str] = []
    for text in texts:
        if text and not any(k.startswith(text) for k in kept):
            kept.append(text)
    return kept


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
