"""`reaper-lsp complete FILE --line L --col C`: one completion through the same chain as the
server, the provider on stderr and the suggestion on stdout. `FILE` may be `-` (the buffer on
standard input)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from reaper_lsp.cli.output import error, out

STDIN = Path("-")


def position_problem(text: str, line: int, col: int, name: str) -> str | None:
    """What is wrong with a 1-based (line, column) in `text`, naming the valid range; None
    when the position exists. The line after a final newline exists (a cursor can be there);
    the column just after a line's last character too."""
    from reaper_lsp.core.document import split_lines, strip_terminator

    lines = split_lines(text)
    if not 1 <= line <= len(lines):
        where = "past the end of" if line > len(lines) else "not a line of"
        return f"--line {line} is {where} {name}: lines are 1 to {len(lines)}"
    last = len(strip_terminator(lines[line - 1])) + 1
    if not 1 <= col <= last:
        return (
            f"--col {col} is outside line {line} of {name}: columns are 1 to {last}"
            f" ({last} is just after the line's last character)"
        )
    return None


async def _read(file: Path) -> tuple[str, Path | None] | str:
    """(the text, its absolute path or None for stdin), or what went wrong."""
    from reaper_lsp.workspace import MAX_DOCUMENT_BYTES, read_text_file

    if file == STDIN:
        data = await asyncio.to_thread(sys.stdin.buffer.read, MAX_DOCUMENT_BYTES + 1)
        if len(data) > MAX_DOCUMENT_BYTES:
            return f"standard input is larger than {MAX_DOCUMENT_BYTES} bytes"
        return data.decode("utf-8", errors="replace"), None
    path = await asyncio.to_thread(file.absolute)
    text = await asyncio.to_thread(read_text_file, path, MAX_DOCUMENT_BYTES, whole=True)
    if text is None:
        return (
            f"cannot read {file}: not a readable regular file of at most {MAX_DOCUMENT_BYTES} bytes"
        )
    return text, path


async def complete(file: Path, line: int, col: int, language: str | None) -> int:
    from reaper_lsp.cli.local import close, local_session
    from reaper_lsp.core.document import Position, index_to_utf16
    from reaper_lsp.workspace import language_of, project_root

    read = await _read(file)
    if isinstance(read, str):
        error("complete", read)
        return 2
    text, path = read
    name = "standard input" if path is None else str(file)
    problem = position_problem(text, line, col, name)
    if problem is not None:
        error("complete", problem)
        return 2
    root = None if path is None else await asyncio.to_thread(project_root, path)
    session = local_session(root)
    try:
        uri = path.as_uri() if path is not None else "untitled:stdin"
        kind = language or (language_of(path) if path is not None else "plaintext")
        doc = session.workspace.documents.open(uri, kind, 1, text)
        line_text = doc.line_text(line - 1)
        position = Position(line - 1, index_to_utf16(line_text, max(0, col - 1)))
        await session.start()
        await session.local.wait_scanned()
        suggestion = await session.completion.complete(uri, position, invoked=True)
    finally:
        await close(session)
    if suggestion is None:
        print("reaper-lsp: no suggestion", file=sys.stderr)
        return 1
    model = f" ({suggestion.model})" if suggestion.model else ""
    out(f"# {suggestion.provider}{model}", sys.stderr)
    out(suggestion.text)
    return 0
