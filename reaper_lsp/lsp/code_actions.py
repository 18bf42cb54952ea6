"""Code actions over LSP: `textDocument/codeAction` offers Explain, Fix, Add docstring, Write
tests and the in-buffer chat as commands; `reaper.codeAction` runs one — the answer streamed like
a chat, then applied with `workspace/applyEdit` (tied to the document version when the client
takes `documentChanges`). The work is `services/code_actions.py`; this translates."""

from __future__ import annotations

import dataclasses

import attrs
from lsprotocol import types as lsp

from reaper_lsp.core.document import Position, TextEdit
from reaper_lsp.lsp.chat import relay
from reaper_lsp.lsp.server import ReaperServer
from reaper_lsp.services.code_actions import ActionRequest, DocumentChange, NewFile
from reaper_lsp.services.errors import ActionRefused

COMMAND = "reaper.codeAction"
_KINDS = {
    "explain": lsp.CodeActionKind.RefactorRewrite,
    "fix": lsp.CodeActionKind.QuickFix,
    "docstring": lsp.CodeActionKind.RefactorRewrite,
    "tests": lsp.CodeActionKind.Source,
    "chat": lsp.CodeActionKind.RefactorRewrite,
}
KINDS = tuple(dict.fromkeys(_KINDS.values()))
"""The code action kinds offered, for the server's capability."""


@attrs.define
class Outcome:
    applied: bool
    provider: str
    text: str
    path: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"applied": self.applied, "provider": self.provider}
        out["text"] = self.text
        if self.path:
            out["path"] = self.path
        return out


def code_action(ls: ReaperServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    r = params.range
    diagnostics = params.context.diagnostics
    found = ls.session.actions.offered(
        params.text_document.uri,
        Position(r.start.line, r.start.character),
        Position(r.end.line, r.end.character),
        diagnosed=bool(diagnostics),
    )
    if found is None:
        return []
    doc, offers = found
    described = [f"line {d.range.start.line + 1}: {d.message}" for d in diagnostics]
    actions = []
    for offer in offers:
        fix = offer.action == "fix"
        args = ActionRequest(offer.action, doc.uri, doc.version, offer.first, offer.last,
                             offer.question, tuple(described) if fix else ())  # fmt: skip
        actions.append(
            lsp.CodeAction(
                offer.title,
                kind=_KINDS[offer.action],
                diagnostics=list(diagnostics) if fix else None,
                command=lsp.Command(offer.title, COMMAND, arguments=[dataclasses.asdict(args)]),
            )
        )
    return actions


async def run_code_action(ls: ReaperServer, request: ActionRequest) -> dict[str, object]:
    """Ask for the action's answer and apply its edit; refused (an error naming why) when the
    document is not at the version the action was offered for, before asking and again
    before editing. (`request` arrives as `code_action` put it in the command.)"""
    service = ls.session.actions
    running = ls.protocol.running_command()
    try:
        prepared = service.prepare(request)
        provider, answer = await relay(
            ls, service.answer(prepared), conversation=f"{COMMAND}:{request.action}",
            token=running.token if running else None, title=prepared.title,
        )  # fmt: skip
        versioned, creates = _client_edits(ls)
        change = await service.change(prepared, answer, creates=creates)
    except ActionRefused as exc:
        ls.show(lsp.MessageType.Error, str(exc))  # the user asked for it: say why not, there
        raise
    path = str(prepared.tests or "")
    if change is None:
        why = prepared.refused or "the editor cannot create files"
        ls.show(lsp.MessageType.Info, f"tests for {path} are in the command's result ({why})")
        return Outcome(False, provider, answer, path).to_json()
    edit = _workspace_edit(change, versioned)
    result = await ls.workspace_apply_edit_async(
        lsp.ApplyWorkspaceEditParams(edit=edit, label=prepared.title)
    )
    return Outcome(bool(result.applied), provider, answer, path).to_json()


def _client_edits(ls: ReaperServer) -> tuple[bool, bool]:
    """(documentChanges, resource creation) support of the client."""
    workspace = ls.client_capabilities.workspace
    edit = workspace.workspace_edit if workspace is not None else None
    if edit is None:
        return False, False
    creates = lsp.ResourceOperationKind.Create in (edit.resource_operations or ())
    return bool(edit.document_changes), bool(edit.document_changes) and creates


def _text_edit(edit: TextEdit) -> lsp.TextEdit:
    start, end = edit.start, edit.end
    return lsp.TextEdit(
        lsp.Range(lsp.Position(start.line, start.character), lsp.Position(end.line, end.character)),
        edit.text,
    )


def _workspace_edit(change: DocumentChange | NewFile, versioned: bool) -> lsp.WorkspaceEdit:
    if isinstance(change, NewFile):
        insert = lsp.TextEdit(lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)), change.text)
        target = lsp.OptionalVersionedTextDocumentIdentifier(uri=change.uri, version=None)
        return lsp.WorkspaceEdit(
            document_changes=[
                lsp.CreateFile(
                    uri=change.uri, options=lsp.CreateFileOptions(ignore_if_exists=True)
                ),
                lsp.TextDocumentEdit(target, [insert]),
            ]
        )
    edits = [_text_edit(edit) for edit in change.edits]
    if not versioned:
        return lsp.WorkspaceEdit(changes={change.uri: edits})
    document = lsp.OptionalVersionedTextDocumentIdentifier(uri=change.uri, version=change.version)
    return lsp.WorkspaceEdit(document_changes=[lsp.TextDocumentEdit(document, list(edits))])


def register(server: ReaperServer) -> None:
    server.command(COMMAND)(run_code_action)
    server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(code_action_kinds=list(KINDS)),
    )(code_action)
