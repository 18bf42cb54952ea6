"""What the user controls about what leaves the machine, over LSP: `reaper.toggle {scope:
"global" | "language" | "workspace", textDocument?}` turns suggestions off or on again (every
editor window agrees), and `reaper.audit {last?, since?}` lists what was sent upstream — sizes,
files, provider, tokens, outcome; never content."""

from __future__ import annotations

from typing import Any

import attrs
import cattrs

from reaper_lsp.lsp.chat import TextDocumentArg
from reaper_lsp.lsp.server import ReaperServer
from reaper_lsp.services.audit import parse_duration
from reaper_lsp.services.errors import InvalidRequest

AUDIT_DEFAULT_LAST = 50
"""Records `reaper.audit` returns when it is not told how many."""


@attrs.define
class ToggleArgs:
    scope: str = "global"
    textDocument: TextDocumentArg | None = None  # the LSP's JSON names


@attrs.define
class AuditArgs:
    last: int | None = None
    since: str | None = None
    """A duration back from now: "30m", "1h", "2d" (a number is seconds)."""


def toggle(ls: ReaperServer, args: ToggleArgs) -> dict[str, object]:
    uri = args.textDocument.uri if args.textDocument is not None else ""
    return ls.session.policy.toggle(args.scope, uri)


async def audit(ls: ReaperServer, *arguments: Any) -> dict[str, object]:
    """Its one argument is optional: a client may send none (pygls then passes nothing)."""
    try:
        args = cattrs.structure(arguments[0], AuditArgs) if arguments else AuditArgs()
        since = parse_duration(args.since) if args.since else None
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise InvalidRequest(
            "reaper.audit takes {last?: number, since?: duration like 1h}: "
            + (str(exc) if isinstance(exc, ValueError) else "bad argument")
        ) from None
    if len(arguments) > 1:
        raise InvalidRequest("reaper.audit takes one argument: {last?, since?}")
    last = AUDIT_DEFAULT_LAST if args.last is None and since is None else args.last
    ledger = ls.session.app.ledger
    records = await ledger.read(last=last, since=since)
    return {"file": str(ledger.path), "records": records}


def register(server: ReaperServer) -> None:
    server.command("reaper.toggle")(toggle)
    server.command("reaper.audit")(audit)
