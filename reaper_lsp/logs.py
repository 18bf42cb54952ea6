"""Logging set-up with a redaction filter: no key or token reaches a log line, whatever code
logged it."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|gh[opsu]_[A-Za-z0-9]{6,}|github_pat_[A-Za-z0-9_]{6,}"
    r"|ya29\.[A-Za-z0-9_\-.]{6,}|1//[A-Za-z0-9_\-]{10,}|tid=[^\s\"']{6,}"
    r"|(?i:bearer|token)\s+[A-Za-z0-9_\-.=:;]{8,})"
)

_known: set[str] = set()


def register_secret(value: str) -> None:
    """Make `value` redacted wherever it appears in later log lines (short values are ignored:
    they would blank out ordinary words)."""
    if len(value) >= 8:
        _known.add(value)


def redact(text: str) -> str:
    for secret in _known:
        if secret in text:
            text = text.replace(secret, "***")
    return _PATTERNS.sub("***", text)


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


def setup_logging(level: str = "INFO", log_file: str | None = None) -> None:
    """Log to `log_file` if given, else stderr (editors show a server's stderr as its log).

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
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Their request logs could carry headers; our own lines say what matters.
    for noisy in ("httpx", "httpcore", "hpack", "h2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
