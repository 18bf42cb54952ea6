"""The one redactor for every string that leaves the process (log lines, status, notifications,
errors, files, CLI output), and the logging set-up that applies it to every log line whatever
code logged it.

It knows two things: the secrets registered at run time (keys from the environment, the config
and `initializationOptions`, tokens read from the token store or received at sign-in), found
verbatim, URL-encoded, JSON-escaped or half-masked the way providers echo a rejected key
("Incorrect API key provided: sk-abc1***wxyz"); and the shapes of the tokens we deal with, for
those nobody registered (another account's key pasted into a prompt, a token in an error).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from reaper_lsp.core.scrub import REDACTION_PATTERNS

MASK = "***"
MIN_SECRET_CHARS = 8
"""Shorter values are not registered: they would blank out ordinary words."""
_MASKED_PART_CHARS = 4
"""How much of a registered secret a half-masked echo must show to count as that secret."""

# The credential shapes are core/scrub.py's (in their looser form, which also catches masked
# and truncated echoes); what is added here is particular to log lines.
_PATTERNS = (
    *REDACTION_PATTERNS,
    # An Authorization value: a digit or a long run tells a credential from an English word
    # ("token expired" stays readable).
    re.compile(r"(?i)\b(?:bearer|token)\s+(?:(?=[^\s\"']*\d)[^\s\"']{4,}|[^\s\"']{16,})"),
)
# A credential in a query string or a form body (an error quoting the URL it failed on).
_PARAMETER = re.compile(
    r"(?i)(\b(?:api[_-]?key|access_token|refresh_token|id_token|client_secret|device_code"
    r"|password)=|(?<=[?&])(?:key|code)=)[^&\s\"'#]+"
)
# A half-masked value as providers echo it: a visible head and/or tail around stars.
# (Anchored at the start of a run, so a long run without stars is scanned once, not once per
# character.)
_MASKED = re.compile(r"(?<![\w\-./+=~])[\w\-./+=~]*+\*+[\w\-]*")

_lock = threading.Lock()
_registry: tuple[frozenset[str], tuple[str, ...]] = (frozenset(), ())
"""The registered secrets and all their forms, longest first, replaced as a pair (one
assignment), so that a reader on another thread sees either the old pair or the new one."""


def _forms(secret: str) -> set[str]:
    """The ways `secret` shows up in text we pass on."""
    forms = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret)}
    forms.add(json.dumps(secret)[1:-1])
    return {form for form in forms if form}


def register_secret(value: str) -> None:
    """Redact `value` (and its encoded and half-masked forms) from everything redacted from now
    on. Safe from any thread; cheap when the value is already known."""
    global _registry
    if len(value) < MIN_SECRET_CHARS or value in _registry[0]:
        return
    with _lock:
        known, forms = _registry
        if value in known:
            return
        # Longest first: a secret that contains another is replaced whole. (Substring tests,
        # not one big regex: registering stays O(forms), redacting a few C-speed scans.)
        merged = sorted({*forms, *_forms(value)}, key=len, reverse=True)
        _registry = (known | {value}, tuple(merged))


def _unmask(match: re.Match[str], known: frozenset[str]) -> str:
    """`***` for a half-masked registered secret; other starred words as they were."""
    word = match.group(0)
    first, last = word.index("*"), word.rindex("*")
    head, tail = word[:first], word[last + 1 :]
    # A single star after a long enough head counts too ("sk-abc12*").
    shown = _MASKED_PART_CHARS if last - first >= 2 else MIN_SECRET_CHARS
    for secret in known:
        if len(head) >= shown and secret.startswith(head):
            return MASK
        if len(tail) >= shown and secret.endswith(tail):
            return MASK
    return word


def redact(text: str) -> str:
    """`text` with every registered secret and anything shaped like a key or token replaced by
    `***`."""
    known, forms = _registry
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    text = _PARAMETER.sub(lambda m: m.group(1) + MASK, text)
    if known and "*" in text:
        text = _MASKED.sub(lambda m: _unmask(m, known), text)
    return text


_T = TypeVar("_T")


def redact_obj(value: _T) -> _T:
    """A copy of `value` (JSON-like: dicts, lists, tuples, strings, scalars) with every string in
    it, keys included, redacted. For status answers, notifications and files."""
    result: Any
    if isinstance(value, str):
        result = redact(value)
    elif isinstance(value, dict):
        result = {redact_obj(k): redact_obj(v) for k, v in value.items()}
    elif isinstance(value, list):
        result = [redact_obj(item) for item in value]
    elif isinstance(value, tuple):
        items = [redact_obj(item) for item in value]
        result = value._make(items) if hasattr(value, "_make") else tuple(items)  # namedtuples
    else:
        result = value
    return result  # type: ignore[no-any-return]


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


session_tag: ContextVar[str] = ContextVar("reaper_lsp_session", default="")
"""Which editor session the running code serves (the daemon tags its log lines with it)."""


class _SessionTag(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.session = session_tag.get() or "-"
        return True


class _WithoutInitializeParams(logging.Filter):
    """pygls logs the client's whole `InitializeParams` at INFO, before any handler of ours could
    register the keys in its `initializationOptions`: the line is kept, the parameters are not."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Language server initialized"):
            record.msg = "Language server initialized (parameters not logged: they can hold keys)"
            record.args = None
        return True


def setup_logging(
    level: str = "INFO", log_file: str | None = None, *, tagged: bool = False
) -> None:
    """Log to `log_file` if given, else stderr (editors show a server's stderr as its log);
    `tagged`: each line names the editor session it was written for (the daemon).

    stdout is never used: it carries the LSP stream.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if log_file:
        path = Path(log_file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    tag = "[%(session)s] " if tagged else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s"))
    handler.addFilter(_SessionTag())
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Their request logs could carry headers; our own lines say what matters.
    for noisy in ("httpx", "httpcore", "hpack", "h2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pygls logs every message it sends and receives at INFO; that is debugging output.
    wire = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for chatty in ("pygls.protocol", "pygls.feature_manager", "pygls.server"):
        logging.getLogger(chatty).setLevel(wire)
    initialize = logging.getLogger("pygls.protocol.language_server")
    if not any(isinstance(f, _WithoutInitializeParams) for f in initialize.filters):
        initialize.addFilter(_WithoutInitializeParams())
