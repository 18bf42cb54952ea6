"""Make a model's text safe to show: in an editor's ghost text and menu, or on a terminal.

A model's answer is untrusted input. A terminal would act on an escape sequence in it (`ESC]52`
writes the clipboard, `ESC[2J` clears the screen), an editor would show invisible bidi controls
that make code read other than it runs ("Trojan Source", CVE-2021-42574), and a 1 MB line makes
a completion menu unusable. So, in this order:

- line breaks become `\\n` (`\\r\\n` and a lone `\\r` alike: a bare `\\r` would let a line overwrite
  itself on a terminal);
- escape sequences are removed whole, introducer, parameters, payload and terminator, so an
  OSC 52 payload does not survive as text: CSI (`ESC[` … final byte), the string sequences OSC,
  DCS, SOS, PM, APC (`ESC]`, `ESC P`, `ESC X`, `ESC ^`, `ESC _` … BEL or ST; an unterminated one
  up to the next ESC or the end of the text, as a terminal would swallow it), their 8-bit C1
  forms, and the other escapes (`ESC c`, `ESC ( B`);
- then every remaining C0 control except tab and newline (NUL included), DEL, the C1 controls
  U+0080–U+009F, lone surrogates (they cannot be encoded for the client), and the invisible
  direction controls: the embeddings, overrides and isolates U+202A–U+202E and U+2066–U+2069,
  and also the marks U+200E, U+200F, U+061C. The marks are removed too because they are just as
  invisible in ghost text and can reorder a neighbouring neutral character; code a model writes
  never needs them (right-to-left text in a string literal displays correctly without them).

Visible characters are never changed, so ordinary code passes through unchanged, and the result
of a second pass is the result of the first (nothing removed can form a new sequence: every ESC
is gone after the first pass).
"""

from __future__ import annotations

import re

MAX_LINE_CHARS = 1000
MAX_CHARS = 20000

_NEWLINES = re.compile(r"\r\n?")
_ESCAPES = re.compile(
    # CSI: parameters, intermediates, a final byte (absent when the text ends first).
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    # OSC, DCS, SOS, PM, APC: a payload up to BEL or ST (ESC \ or U+009C).
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    # Every other escape: intermediates then one final byte.
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]"
)
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def sanitize_terminal(text: str) -> str:
    """`text` without control characters, escape sequences or bidi controls; tabs and newlines
    kept (line breaks as `\\n`). For anything a model wrote that goes to a terminal."""
    text = _NEWLINES.sub("\n", text)
    text = _ESCAPES.sub("", text)
    return _FORBIDDEN.sub("", text)


def sanitize_suggestion(
    text: str, *, max_line_chars: int = MAX_LINE_CHARS, max_chars: int = MAX_CHARS
) -> str:
    """`sanitize_terminal(text)`, then capped for an editor: a line longer than
    `max_line_chars` is cut there and the suggestion ends with it (what followed a cut line
    would no longer fit it); a text longer than `max_chars` ends at the last line break within
    the limit, or at the limit itself when the first line is that long."""
    text = _cap_lines(sanitize_terminal(text), max_line_chars)
    if len(text) > max_chars:
        head = text[:max_chars]
        cut = head.rfind("\n")
        text = head[:cut] if cut > 0 else head
    return text


def _cap_lines(text: str, limit: int) -> str:
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        if end - start > limit:
            return text[: start + limit]
        start = end + 1
    return text


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


class StreamSanitizer:
    """`sanitize_terminal` for a text that arrives in pieces, each piece cleaned once: an escape
    sequence, or a `\r` that may be half of `\r\n`, split across pieces waits for the rest, so
    the pieces joined are what sanitising the whole would give."""

    def __init__(self) -> None:
        self.held = ""

    def feed(self, piece: str) -> str:
        text = self.held + piece
        cut = open_escape(text)
        if cut < 0 and text.endswith("\r"):
            cut = len(text) - 1
        text, self.held = (text[:cut], text[cut:]) if cut >= 0 else (text, "")
        return sanitize_terminal(text)

    def finish(self) -> str:
        """What is still held (an escape sequence the text never finished), cleaned."""
        text, self.held = self.held, ""
        return sanitize_terminal(text)
