"""Next-edit suggestions without a model, pure: the recent-edit history of each document, and
an identifier renamed in one place proposed at its other uses in the same scope.

Positions are (line, UTF-16 character) like LSP's. An `Edit` keeps one start position, valid
both before and after it (the text before the start is unchanged); its end is derived from the
text. Edits are recorded before the change is applied, so the old text can be read.
"""

from __future__ import annotations

import keyword
import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from reaper_lsp.core.document import (
    Change,
    Position,
    index_to_utf16,
    split_lines,
    strip_terminator,
    utf16_to_index,
)

Pos = tuple[int, int]
MAX_EDITS = 10
MAX_DOCUMENTS = 64
SCOPE_WINDOW = 1000
"""Lines searched either side of a rename: scopes larger than this are cut."""
MAX_PROPOSALS = 50

_IDENT = re.compile(r"[^\W\d]\w*")
_PY_HEADER = re.compile(r"\s*(?:async\s+)?(def|class)\s+(\w+)")
_CLASS_LIKE = re.compile(r"\b(?:class|struct|impl|interface|trait|object|enum)\b")
_BRACES = re.compile(r"[{}]")
_PY_START = re.compile(r"#|'''|\"\"\"|'|\"")
_BRACE_START = re.compile(r"//|/\*|\"|'|`")
_STRING_END = {q: re.compile(rf"(?:[^{q}\\]|\\.)*{q}") for q in ("'", '"')}
_CHAR_LITERAL = re.compile(r"'(?:\\.[^'\n]{0,8}|[^\\'\n])'")
_CLOSERS = {"'''": "'''", '"""': '"""', "/*": "*/", "`": "`"}


def _u16(text: str) -> int:
    return index_to_utf16(text, len(text))


def _after(pos: Pos, text: str) -> Pos:
    """Where `text` ends when inserted at `pos`."""
    parts = split_lines(text)
    if len(parts) == 1:
        return pos[0], pos[1] + _u16(text)
    return pos[0] + len(parts) - 1, _u16(parts[-1])


def _is_ident(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


@dataclass(frozen=True, slots=True)
class Edit:
    """`old` replaced by `new` at (line, character); `version` is the document's after it."""

    line: int
    character: int
    old: str
    new: str
    version: int

    @property
    def start(self) -> Pos:
        return self.line, self.character

    @property
    def old_end(self) -> Pos:
        return _after(self.start, self.old)

    @property
    def end(self) -> Pos:
        return _after(self.start, self.new)


@dataclass(frozen=True, slots=True)
class NextEdit:
    """Replace the range (UTF-16, the document's current coordinates) with `text`."""

    start_line: int
    start_character: int
    end_line: int
    end_character: int
    text: str


@dataclass(frozen=True, slots=True)
class NextEditProposal:
    """Edits computed against one version of a document."""

    version: int
    edits: tuple[NextEdit, ...] = ()

    def is_stale(self, current_version: int) -> bool:
        """The document changed since: the ranges may no longer point at the same text."""
        return current_version != self.version


def _index(lines: Sequence[str], pos: Position) -> tuple[int, int]:
    """(line, string index) of a position, clamped like `Document.clamp`."""
    if pos.line < 0:
        return 0, 0
    if pos.line >= len(lines):
        return len(lines) - 1, len(strip_terminator(lines[-1]))
    return pos.line, utf16_to_index(strip_terminator(lines[pos.line]), pos.character)


def change_to_edit(lines: Sequence[str], change: Change, version: int) -> Edit | None:
    """The edit a change makes to `lines` (call before applying it); None if it changes nothing.

    A whole-document replacement (what Vim's copilot.vim sends) becomes the smallest edit
    covering what differs.
    """
    if not lines:
        return None
    if change.start is None or change.end is None:
        return _diff_edit(lines, change.text, version)
    (sl, si), (el, ei) = sorted((_index(lines, change.start), _index(lines, change.end)))
    if sl == el:
        old = lines[sl][si:ei]
    else:
        old = lines[sl][si:] + "".join(lines[sl + 1 : el]) + lines[el][:ei]
    character = index_to_utf16(strip_terminator(lines[sl]), si)
    return None if old == change.text else Edit(sl, character, old, change.text, version)


def _common(a: str, b: str, limit: int, from_end: bool) -> int:
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        same = a[len(a) - mid :] == b[len(b) - mid :] if from_end else a[:mid] == b[:mid]
        lo, hi = (mid, hi) if same else (lo, mid - 1)
    return lo


def _diff_edit(lines: Sequence[str], new_text: str, version: int) -> Edit | None:
    old_text = "".join(lines)
    prefix = _common(old_text, new_text, min(len(old_text), len(new_text)), from_end=False)
    line, offset = 0, 0
    while line < len(lines) - 1 and offset + len(lines[line]) <= prefix:
        offset += len(lines[line])
        line += 1
    text = strip_terminator(lines[line])
    prefix = offset + min(prefix - offset, len(text))  # never start inside a line break
    limit = min(len(old_text), len(new_text)) - prefix
    suffix = _common(old_text, new_text, limit, from_end=True)
    old = old_text[prefix : len(old_text) - suffix]
    new = new_text[prefix : len(new_text) - suffix]
    if old == new:
        return None
    return Edit(line, index_to_utf16(text, prefix - offset), old, new, version)


def _merge(last: Edit, edit: Edit) -> Edit | None:
    """One logical edit when `edit` continues `last` (typing on, backspacing, deleting on)."""
    if edit.start == last.end:
        boundary = last.new and edit.new and _is_ident(last.new[-1]) and not _is_ident(edit.new[0])
        if not boundary:  # a word just finished starts a new edit: "name(" is not one rename
            return Edit(
                last.line, last.character, last.old + edit.old, last.new + edit.new, edit.version
            )
    if edit.old and edit.old_end == last.end and last.new.endswith(edit.old):
        kept = last.new[: len(last.new) - len(edit.old)]
        return Edit(last.line, last.character, last.old, kept + edit.new, edit.version)
    if not last.new and edit.old_end == last.start:
        return Edit(edit.line, edit.character, edit.old + last.old, edit.new, edit.version)
    return None


def _shift(older: Edit, edit: Edit) -> Edit | None:
    """`older` moved by `edit`; None when `edit` overwrote part of it."""
    if older.end <= edit.start:
        return older
    if older.start < edit.old_end:
        return None
    (ol, oc), (nl, nc) = edit.old_end, edit.end
    character = nc + older.character - oc if older.line == ol else older.character
    return replace(older, line=older.line + nl - ol, character=character)


class EditHistory:
    """The last few logical edits per document, oldest first, in current coordinates."""

    def __init__(self, max_edits: int = MAX_EDITS, max_documents: int = MAX_DOCUMENTS) -> None:
        self._max_edits = max_edits
        self._max_documents = max_documents
        self._docs: OrderedDict[str, list[Edit]] = OrderedDict()

    def record(self, uri: str, edit: Edit) -> None:
        edits = self._docs.pop(uri, [])
        merged = _merge(edits[-1], edit) if edits else None
        if merged is not None:
            edits.pop()
        kept = [e for e in (_shift(e, edit) for e in edits) if e is not None]
        latest = edit if merged is None else merged
        if latest.old != latest.new:
            kept.append(latest)
        self._docs[uri] = kept[-self._max_edits :]
        while len(self._docs) > self._max_documents:
            self._docs.popitem(last=False)

    def edits(self, uri: str) -> tuple[Edit, ...]:
        return tuple(self._docs.get(uri, ()))

    def forget(self, uri: str) -> None:
        self._docs.pop(uri, None)


@dataclass(frozen=True, slots=True)
class _Rename:
    line: int
    index: int
    """String index of the new word in its line."""
    old: str
    new: str
    attribute: bool


def _rename_at(lines: Sequence[str], edit: Edit) -> _Rename | None:
    """The identifier rename `edit` made, judged from the word around it now."""
    if edit.line >= len(lines) or any(c in edit.old + edit.new for c in "\r\n"):
        return None
    text = strip_terminator(lines[edit.line])
    start = utf16_to_index(text, edit.character)
    end = start + len(edit.new)
    if text[start:end] != edit.new:
        return None
    a, b = start, end
    while a > 0 and _is_ident(text[a - 1]):
        a -= 1
    while b < len(text) and _is_ident(text[b]):
        b += 1
    new, old = text[a:b], text[a:start] + edit.old + text[end:b]
    if old == new or not (_IDENT.fullmatch(old) and _IDENT.fullmatch(new)):
        return None
    if keyword.iskeyword(old) or keyword.iskeyword(new):
        return None
    return _Rename(edit.line, a, old, new, a > 0 and text[a - 1] == ".")


def rename_edits(
    edits: Sequence[Edit],
    lines: Sequence[str],
    version: int,
    cursor: Position | None,
    language: str,
    path: str = "",
) -> NextEditProposal:
    """After an identifier was renamed in one place, the same rename at its other uses.

    Looks at the last 3 edits, newest first. A rename that is still being typed (it is the
    newest edit and the cursor sits at its end) proposes nothing until the cursor leaves or a
    non-identifier character ends the word.
    """
    for age, edit in enumerate(reversed(edits[-3:])):
        rename = _rename_at(lines, edit)
        if rename is None:
            continue
        if age == 0 and cursor is not None and (cursor.line, cursor.character) == edit.end:
            break
        python = language == "python" or path.endswith((".py", ".pyi"))
        return NextEditProposal(version, tuple(_occurrences(lines, rename, python)))
    return NextEditProposal(version)


def _skip(line: str, m: re.Match[str], python: bool) -> tuple[int, int, str | None]:
    """Span of the string or comment starting at `m`, and the closer still awaited if any."""
    s, tok = m.start(), m.group()
    if tok in ("#", "//"):
        return s, len(line), None
    if tok in _CLOSERS:
        found = line.find(_CLOSERS[tok], m.end())
        if found < 0:
            return s, len(line), _CLOSERS[tok]
        return s, found + len(_CLOSERS[tok]), None
    if tok == '"' or python:
        end = _STRING_END[tok].match(line, m.end())
        while python and s > max(m.start() - 2, 0) and line[s - 1] in "rbfuRBFU":
            s -= 1  # a prefix: f"..." must not look like a name `f`
        return s, end.end() if end else len(line), None
    literal = _CHAR_LITERAL.match(line, s)  # 'x' yes, Rust's 'a lifetime no
    return s, literal.end() if literal else s, None


def _blank(lines: Sequence[str], python: bool) -> list[str]:
    """Lines with strings and comments replaced by spaces, so indices still match."""
    out: list[str] = []
    closer: str | None = None
    starts = _PY_START if python else _BRACE_START
    for raw in lines:
        line = strip_terminator(raw)
        chars, i, n = list(line), 0, len(line)
        while i < n:
            if closer is not None:
                found = line.find(closer, i)
                s, e = i, n if found < 0 else found + len(closer)
                closer = closer if found < 0 else None
            elif (m := starts.search(line, i)) is None:
                break
            else:
                s, e, closer = _skip(line, m, python)
                if e <= s:
                    i = s + 1
                    continue
            chars[s:e] = " " * (e - s)
            i = e
        out.append("".join(chars))
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _py_enclosing(code: list[str], line: int, kinds: tuple[str, ...]) -> int | None:
    threshold = _indent(code[line])
    for k in range(line - 1, -1, -1):
        if not code[k].strip() or _indent(code[k]) >= threshold:
            continue
        header = _PY_HEADER.match(code[k])
        if header and header.group(1) in kinds:
            return k
        threshold = _indent(code[k])
        if threshold == 0:
            return None
    return None


def _py_block(code: list[str], header: int | None) -> tuple[int, int]:
    if header is None:
        return 0, len(code) - 1
    last, own = header, _indent(code[header])
    for k in range(header + 1, len(code)):
        stripped = code[k].strip()
        if stripped and _indent(code[k]) <= own and stripped[0] not in ")]}":
            break
        last = k if stripped else last
    return header, last


def _python_scope(code: list[str], r: _Rename) -> tuple[int, int, str]:
    if r.attribute:
        return *_py_block(code, _py_enclosing(code, r.line, ("class",))), "attribute"
    header = _PY_HEADER.match(code[r.line])
    if header and header.start(2) == r.index:  # the name a def/class defines
        parent = _py_enclosing(code, r.line, ("def", "class"))
        method = parent is not None and code[parent].lstrip().startswith("class")
        return *_py_block(code, parent), "any" if method else "bare"
    if header:  # a parameter: the function's own block
        return *_py_block(code, r.line), "bare"
    return *_py_block(code, _py_enclosing(code, r.line, ("def", "class"))), "bare"


def _open_before(code: list[str], line: int, col: int) -> Pos | None:
    depth = 0
    for k in range(line, -1, -1):
        segment = code[k][:col] if k == line else code[k]
        for m in reversed(list(_BRACES.finditer(segment))):
            if m.group() == "}":
                depth += 1
            elif depth == 0:
                return k, m.start()
            else:
                depth -= 1
    return None


def _close_after(code: list[str], line: int, col: int) -> int:
    depth = 0
    for k in range(line, len(code)):
        for m in _BRACES.finditer(code[k], col + 1 if k == line else 0):
            depth += 1 if m.group() == "{" else -1
            if depth < 0:
                return k
    return len(code) - 1


def _brace_scope(code: list[str], r: _Rename) -> tuple[int, int, str]:
    text, end = code[r.line], r.index + len(r.new)
    if text[: r.index].count("(") > text[: r.index].count(")"):  # a parameter: the body after
        for k in range(r.line, min(r.line + 5, len(code))):
            seg = code[k][end:] if k == r.line else code[k]
            brace, semi = seg.find("{"), seg.find(";")
            if brace >= 0 and (semi < 0 or brace < semi):
                return r.line, _close_after(code, k, brace + (end if k == r.line else 0)), "bare"
            if semi >= 0:
                break
    call = text[end:].lstrip().startswith("(")
    opened = _open_before(code, r.line, r.index)
    if r.attribute or call:  # fields and methods: the enclosing class-like block
        while opened is not None:
            header = code[opened[0]][: opened[1]]  # `class A {`, or `{` under `class A`
            if not header.strip() and opened[0] > 0:
                header = code[opened[0] - 1]
            if _CLASS_LIKE.search(header):
                return opened[0], _close_after(code, *opened), "attribute" if r.attribute else "any"
            opened = _open_before(code, *opened)
        return 0, len(code) - 1, "attribute" if r.attribute else "bare"
    if opened is None:
        return 0, len(code) - 1, "bare"
    return opened[0], _close_after(code, *opened), "bare"


def _occurrences(lines: Sequence[str], r: _Rename, python: bool) -> Iterator[NextEdit]:
    lo = max(0, r.line - SCOPE_WINDOW)
    code = _blank(lines[lo : r.line + SCOPE_WINDOW + 1], python)
    local = replace(r, line=r.line - lo)
    first, last, mode = (_python_scope if python else _brace_scope)(code, local)
    before = {"bare": r"(?<![\w.])", "attribute": r"(?<=\.)", "any": r"(?<!\w)"}[mode]
    pattern = re.compile(before + re.escape(r.old) + r"(?!\w)")
    found = []
    for k in range(first, last + 1):
        for m in pattern.finditer(code[k]):
            head, tail = code[k][: m.start()].rstrip(), code[k][m.end() :].lstrip()
            if python and head.endswith(("(", ",")) and tail[:1] == "=" and tail[:2] != "==":
                continue  # a keyword argument names the callee's parameter, not ours
            text = strip_terminator(lines[k + lo])
            s, e = index_to_utf16(text, m.start()), index_to_utf16(text, m.end())
            found.append(NextEdit(k + lo, s, k + lo, e, r.new))
    found.sort(key=lambda n: (n.start_line <= r.line, n.start_line, n.start_character))
    yield from found[:MAX_PROPOSALS]  # uses after the rename first, nearest first
