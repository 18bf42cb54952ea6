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

from reaper_lsp.core.sanitize import sanitize_terminal

if TYPE_CHECKING:
    from reaper_lsp.services.app import App
    from reaper_lsp.services.chat import Lines

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


def save(app: App) -> None:
    """Write the conversation where `--continue` finds it, readable by the user only."""
    path = conversation_file()
    data = json.dumps(app.chat.conversations.to_json(CONVERSATION)).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # an older file may have other bits
            out.write(data)
    except OSError as exc:
        _error(f"could not save the conversation to {path}: {exc.strerror or exc}")


def restore(app: App) -> None:
    from reaper_lsp.workspace import read_text_file

    text = read_text_file(conversation_file(), 8 * 1024 * 1024)
    if text is None:
        return
    with contextlib.suppress(ValueError):
        app.chat.conversations.load(json.loads(text) | {"id": CONVERSATION})


_STRING_INTRODUCERS = "]PX^_"  # after ESC: OSC, DCS, SOS, PM, APC (ended by BEL or ST)
_C1_STRINGS = "\x90\x98\x9d\x9e\x9f"
MAX_HELD = 4096
"""An escape sequence still open after this many characters is given up on (and dropped)."""


def open_escape(text: str) -> int:
    """Where an escape sequence that the text so far has not finished starts, or -1."""
    start = max(text.rfind("\x1b"), text.rfind("\x9b"), *(text.rfind(c) for c in _C1_STRINGS))
    if start < 0 or len(text) - start > MAX_HELD:
        return -1
    head, body = text[start], text[start + 1 :]
    if (head == "\x1b" and body[:1] == "[") or head == "\x9b":
        body = body[1:] if head == "\x1b" else body
        finished = any("\x40" <= c <= "\x7e" for c in body)
    elif (head == "\x1b" and body[:1] in tuple(_STRING_INTRODUCERS)) or head in _C1_STRINGS:
        finished = "\x07" in body or "\x9c" in body
    else:  # ESC, intermediates, then one final byte
        finished = any(not "\x20" <= c <= "\x2f" for c in body)
    return -1 if finished else start


class _Printer:
    """Pieces of an answer to a stream, sanitised as a whole would be: an escape sequence, or a
    `\r` that may be half of `\r\n`, split across pieces waits for the rest."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.held = ""
        self.last = "\n"

    def write(self, piece: str) -> None:
        text = self.held + piece
        cut = open_escape(text)
        if cut < 0 and text.endswith("\r"):
            cut = len(text) - 1
        text, self.held = (text[:cut], text[cut:]) if cut >= 0 else (text, "")
        self._emit(sanitize_terminal(text))

    def _emit(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self.last = text[-1]

    def finish(self) -> None:
        self._emit(sanitize_terminal(self.held))
        if self.last != "\n":
            self.out.write("\n")
            self.out.flush()
        self.held, self.last = "", "\n"


async def ask(
    app: App, question: str, uri: str | None, lines: Lines | None, *, interactive: bool = False
) -> int:
    """Stream one answer; 0, or 1 on failure. In an interactive session Ctrl-C stops the
    answer (closing the upstream stream) instead of ending the program."""
    from reaper_lsp.providers.errors import ProviderError

    printer = _Printer(sys.stdout)
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    if interactive and task is not None:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        async for piece in app.chat.converse(CONVERSATION, question, uri=uri, lines=lines):
            printer.write(piece.text)
    except asyncio.CancelledError:
        printer.finish()
        sys.stderr.write("(answer stopped)\n")
        return 1
    except ProviderError as exc:
        printer.finish()
        _error(str(exc))
        return 1
    finally:
        if interactive:
            loop.remove_signal_handler(signal.SIGINT)
    printer.finish()
    save(app)
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
    from reaper_lsp import config
    from reaper_lsp.cli import project_root
    from reaper_lsp.logs import register_secret
    from reaper_lsp.services.app import App
    from reaper_lsp.services.chat import Lines
    from reaper_lsp.workspace import MAX_DOCUMENT_BYTES, language_of, read_text_file

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
    loaded = config.load(workspace_root=root)
    for problem in loaded.errors:
        _error(f"config: {problem}")
    app = App(loaded, workspace_roots=[root])
    for secret in app.secrets():
        register_secret(secret)
    if uri is not None and file is not None:
        app.workspace.documents.open(uri, language_of(file), 1, text)
    if resume:
        restore(app)
    with asyncio.Runner() as runner:
        try:
            if question:
                return runner.run(ask(app, question, uri, lines))
            return _interactive(runner, app, uri, lines)
        finally:
            runner.run(app.aclose())


def _interactive(runner: asyncio.Runner, app: App, uri: str | None, lines: Lines | None) -> int:
    tty = sys.stdin.isatty()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    remember = False
    if tty:
        with contextlib.suppress(ImportError, OSError):
            import readline  # line editing and history for input()

            remember = True
            readline.read_history_file(_history())
        sys.stderr.write(HINT + "\n")
    while (question := _read_question("> " if tty else "")) is not None:
        # A KeyboardInterrupt here came before the answer took Ctrl-C over: nothing to stop.
        with contextlib.suppress(KeyboardInterrupt):
            runner.run(ask(app, question, uri, lines, interactive=True))
    if remember:
        with contextlib.suppress(ImportError, OSError):
            import readline

            _history().parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(_history())
    if tty:
        sys.stdout.write("\n")
    return 0
