"""`reaper-lsp chat`: ask the chat providers from a terminal, one question or an interactive
session, the answer streamed to stdout without any escape sequence of the model's.

The conversation is saved after every answer (a 0600 file in the user state directory), so
`--continue` takes it up again in a later run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import platformdirs

from reaper_lsp.core.sanitize import StreamSanitizer, sanitize_terminal

if TYPE_CHECKING:
    from reaper_lsp.services.chat import Lines
    from reaper_lsp.services.session import Session

CONVERSATION = "terminal"
HINT = "Ask away: Enter sends, Ctrl-C stops an answer, Ctrl-D quits."


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir("reaper-lsp"))


def conversation_file() -> Path:
    return state_dir() / "chat.json"


def parse_lines(value: str, line_count: int) -> tuple[int, int] | str:
    """1-based `A:B` (or `A`) → 0-based (first, last), or what is wrong with it."""
    first, _, last = value.partition(":")
    if not first.isdigit() or not (last or first).isdigit():
        return f"--lines {value!r}: expected A:B, 1-based line numbers"
    a, b = int(first), int(last or first)
    if not 1 <= a <= b <= line_count:
        return f"--lines {value}: lines are 1 to {line_count}, A no more than B"
    return a - 1, b - 1


def _error(text: str) -> None:
    sys.stderr.write(sanitize_terminal(f"reaper-lsp chat: error: {text}") + "\n")
    sys.stderr.flush()


def save(session: Session) -> None:
    """Write the conversation where `--continue` finds it, readable by the user only."""
    path = conversation_file()
    data = json.dumps(session.chat.conversations.to_json(CONVERSATION)).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # an older file may have other bits
            out.write(data)
    except OSError as exc:
        _error(f"could not save the conversation to {path}: {exc.strerror or exc}")


def restore(session: Session) -> None:
    """Take up the saved conversation; a damaged file starts a new one, and says so."""
    from reaper_lsp.workspace import read_text_file

    path = conversation_file()
    text = read_text_file(path, 8 * 1024 * 1024)
    if text is None:
        return
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if session.chat.conversations.load(data, CONVERSATION) is None:
        _error(f"{path} is damaged: starting a new conversation")


class _Printer:
    """Pieces of an answer to a stream, sanitised as a whole would be (`StreamSanitizer`)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.clean = StreamSanitizer()
        self.last = "\n"

    def write(self, piece: str) -> None:
        self._emit(self.clean.feed(piece))

    def _emit(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self.last = text[-1]

    def finish(self) -> None:
        self._emit(self.clean.finish())
        if self.last != "\n":
            self.out.write("\n")
            self.out.flush()
        self.last = "\n"


async def ask(
    session: Session,
    question: str,
    uri: str | None,
    lines: Lines | None,
    *,
    interactive: bool = False,
) -> int:
    """Stream one answer; 0, or 1 on failure. In an interactive session Ctrl-C stops the
    answer (closing the upstream stream) instead of ending the program."""
    from reaper_lsp.services.errors import ChatFailed

    printer = _Printer(sys.stdout)
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    if interactive and task is not None:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        async for piece in session.chat.converse(CONVERSATION, question, uri=uri, lines=lines):
            printer.write(piece.text)
    except asyncio.CancelledError:
        printer.finish()
        sys.stderr.write("(answer stopped)\n")
        return 1
    except ChatFailed as exc:
        printer.finish()
        _error(str(exc))
        return 1
    finally:
        if interactive:
            loop.remove_signal_handler(signal.SIGINT)
    printer.finish()
    save(session)
    return 0


def _history() -> Path:
    return state_dir() / "chat_history"


def _read_question(prompt: str) -> str | None:
    """The next question (blank lines skipped); None at end of input."""
    while True:
        try:
            line = input(prompt)
        except EOFError:
            return None
        except KeyboardInterrupt:  # at the prompt: drop the line, ask again
            sys.stdout.write("\n")
            continue
        if line.strip():
            return line


def run(question: str | None, file: Path | None, lines_arg: str | None, resume: bool) -> int:
    """The `chat` command; the exit status."""
    from reaper_lsp.cli.local import close, local_session
    from reaper_lsp.services.chat import Lines
    from reaper_lsp.workspace import MAX_DOCUMENT_BYTES, language_of, project_root, read_text_file

    if lines_arg and file is None:
        _error("--lines needs --file")
        return 2
    root, uri, lines, text = Path.cwd(), None, None, ""
    if file is not None:
        path = file.absolute()
        found = read_text_file(path, MAX_DOCUMENT_BYTES)
        if found is None:
            _error(f"cannot read {file}: not a readable regular file")
            return 2
        text, root, uri = found, project_root(path), path.as_uri()
        if lines_arg:
            parsed = parse_lines(lines_arg, max(1, len(text.splitlines())))
            if isinstance(parsed, str):
                _error(parsed)
                return 2
            lines = Lines(*parsed)
    session = local_session(root)
    if uri is not None and file is not None:
        session.workspace.documents.open(uri, language_of(file), 1, text)
    if resume:
        restore(session)
    with asyncio.Runner() as runner:
        try:
            if question:
                return runner.run(ask(session, question, uri, lines))
            return _interactive(runner, session, uri, lines)
        finally:
            runner.run(close(session))


def _interactive(
    runner: asyncio.Runner, session: Session, uri: str | None, lines: Lines | None
) -> int:
    """Questions until end of input; the status of the last answer (0 when none was asked)."""
    tty = sys.stdin.isatty()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    remember = False
    if tty:
        with contextlib.suppress(ImportError, OSError):
            import readline  # line editing and history for input()

            remember = True
            readline.read_history_file(_history())
        sys.stderr.write(HINT + "\n")
    status = 0
    while (question := _read_question("> " if tty else "")) is not None:
        # A KeyboardInterrupt here came before the answer took Ctrl-C over: nothing to stop.
        with contextlib.suppress(KeyboardInterrupt):
            status = runner.run(ask(session, question, uri, lines, interactive=True))
    if remember:
        with contextlib.suppress(ImportError, OSError):
            import readline

            _history().parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(_history())
    if tty:
        sys.stdout.write("\n")
    return status
