"""`reaper-lsp audit` and `reaper-lsp stats`: what went upstream, read back from the local audit
log (sizes, files, provider, tokens, outcome — the log holds no content), and the figures
computed from it. Both work from a fresh install: no log yet is said, not an error."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from reaper_lsp.cli.output import out
from reaper_lsp.services.audit import AUDIT_FILE, parse_time, read_lines, select, state_home
from reaper_lsp.services.stats import tally

DEFAULT_LAST = 50


def _when(value: object) -> str:
    seconds = parse_time(value)
    return time.strftime("%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "?"


def _int(value: object) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "-"


def _row(record: Mapping[str, Any]) -> list[str]:
    sizes, tokens, files = record.get("bytes"), record.get("tokens"), record.get("contextFiles")
    sizes = sizes if isinstance(sizes, Mapping) else {}
    tokens = tokens if isinstance(tokens, Mapping) else {}
    files = files if isinstance(files, list) else []
    return [
        _when(record.get("time")),
        str(record.get("client") or "-"),
        str(record.get("provider") or "?"),
        str(record.get("model") or "-"),
        str(record.get("purpose") or "?"),
        str(record.get("path") or "-"),
        "/".join(_int(sizes.get(k)) for k in ("prefix", "suffix", "context")),
        ",".join(str(f) for f in files) or "-",
        _int(record.get("scrubbed")),
        f"{_int(tokens.get('in'))}/{_int(tokens.get('out'))}",
        f"{record.get('latencyMs', '-')}",
        str(record.get("outcome") or "?"),
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell (the last one left as it is)."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(r, widths, strict=False)), r[-1]])
        for r in (header, *rows)
    ]


AUDIT_HEADER = ("TIME", "CLIENT", "PROVIDER", "MODEL", "PURPOSE", "PATH", "BYTES P/S/C",
                "CONTEXT FILES", "SCRUBBED", "TOKENS IN/OUT", "MS", "OUTCOME")  # fmt: skip


def show_audit(*, as_json: bool, last: int | None, since: float | None) -> int:
    """`reaper-lsp audit [--json] [--last N] [--since 1h]`."""
    folder = state_home(os.environ)
    if last is None and since is None:
        last = DEFAULT_LAST
    records = select(read_lines(folder), last=last, since=since)
    if as_json:
        print(json.dumps(records, indent=2, ensure_ascii=False))
        return 0
    if not records:
        out(f"no upstream request recorded{' in that time' if since else ''} "
            f"(audit log: {folder / AUDIT_FILE})")  # fmt: skip
        return 0
    for line in table(AUDIT_HEADER, [_row(r) for r in records]):
        out(line)
    out(f"({len(records)} requests; bytes: prefix/suffix/other code; log: {folder / AUDIT_FILE})")
    return 0


STATS_HEADER = ("PROVIDER", "LANGUAGE", "REQUESTS", "FAILED", "TOKENS IN", "TOKENS OUT",
                "SHOWN", "ACCEPTED", "RATE", "P50 MS", "P90 MS")  # fmt: skip


def _figure(value: object, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{float(str(value)) * 100:.0f}%" if percent else str(value)


def show_stats(*, as_json: bool) -> int:
    """`reaper-lsp stats [--json]`: from the local audit log only."""
    folder = state_home(os.environ)
    rows = tally(read_lines(folder))
    if as_json:
        print(json.dumps({"file": str(folder / AUDIT_FILE), "rows": [r.to_json() for r in rows]},
                         indent=2, ensure_ascii=False))  # fmt: skip
        return 0
    if not rows:
        out(f"no requests recorded yet: nothing to count (audit log: {folder / AUDIT_FILE})")
        return 0
    cells = [
        [r.provider, r.language or "-", str(r.requests), str(r.failed), str(r.tokens_in),
         str(r.tokens_out), str(r.shown), str(r.accepted + r.partial),
         _figure(r.acceptance, percent=True), _figure(r.latency(0.5)), _figure(r.latency(0.9))]
        for r in rows
    ]  # fmt: skip
    for line in table(STATS_HEADER, cells):
        out(line)
    out("(tokens as the providers reported them; rate: accepted per suggestion shown)")
    return 0
