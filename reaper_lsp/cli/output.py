"""Writing to the terminal: what a model, a sign-in server or a config file supplied is printed
without any escape sequence or control character of theirs."""

from __future__ import annotations

import sys
from typing import TextIO

from reaper_lsp.core.sanitize import sanitize_terminal


def out(text: str, stream: TextIO | None = None) -> None:
    """One line of `text`, sanitised, to `stream` (stdout by default)."""
    target = stream or sys.stdout
    target.write(sanitize_terminal(text) + "\n")
    target.flush()


def error(command: str, text: str) -> None:
    """`reaper-lsp COMMAND: error: TEXT` on stderr."""
    out(f"reaper-lsp {command}: error: {text}", sys.stderr)
