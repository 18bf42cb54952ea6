"""Code actions that edit, through the real server: the test client applies each
`workspace/applyEdit` to its buffers as an editor would and tells the server (didChange)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import pytest
from lsprotocol import types as lsp

from tests.e2e.conftest import Session, openai_options
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"OPENAI_API_KEY": "sk-test"}
CALC = "import math\n\n\ndef add(a, b):\n    return a - b\n\n\nprint(add(1, 2))\n"


def offset(text: str, position: lsp.Position) -> int:
    lines = text.splitlines(keepends=True)
    return sum(len(line) for line in lines[: position.line]) + position.character


def apply(text: str, edits: list[lsp.TextEdit]) -> str:
    for edit in sorted(edits, key=lambda e: offset(text, e.range.start), reverse=True):
        start, end = offset(text, edit.range.start), offset(text, edit.range.end)
        text = text[:start] + edit.new_text + text[end:]
    return text


class Editor:
    """The buffers of a test client, edited by the server's `workspace/applyEdit`."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.buffers: dict[str, str] = {}
        self.applied: list[lsp.WorkspaceEdit] = []

        def on_apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
            return self.apply_edit(params)

        s.client.feature(lsp.WORKSPACE_APPLY_EDIT)(on_apply_edit)
        # lsprotocol reads any code action that has a `command` as a bare Command (its kind and
        # diagnostics lost); an editor tells them apart by the type of `command`.
        converter = s.client.protocol._converter

        def action_or_command(obj: Any, _: type) -> lsp.CodeAction | lsp.Command:
            kind = lsp.Command if isinstance(obj.get("command"), str) else lsp.CodeAction
            return converter.structure(obj, kind)  # type: ignore[no-any-return]

        either = Union[lsp.Command, lsp.CodeAction]  # noqa: UP007 (lsprotocol's key)
        converter.register_structure_hook(either, action_or_command)

    def open(self, name: str, text: str) -> str:
        uri = self.s.open(name, text)
        self.buffers[uri] = text
        return uri

    def apply_edit(self, params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        edit = params.edit
        self.applied.append(edit)
        for uri, edits in (edit.changes or {}).items():
            self.edit(uri, list(edits))
        for change in edit.document_changes or ():
            if isinstance(change, lsp.CreateFile):
                self.buffers.setdefault(change.uri, "")
            elif isinstance(change, lsp.TextDocumentEdit):
                version = change.text_document.version
                if version is not None and version != self.s._versions.get(
                    change.text_document.uri
                ):
                    return lsp.ApplyWorkspaceEditResult(applied=False, failure_reason="version")
                self.edit(change.text_document.uri, list(change.edits))  # type: ignore[arg-type]
        return lsp.ApplyWorkspaceEditResult(applied=True)

    def edit(self, uri: str, edits: list[lsp.TextEdit]) -> None:
        if uri not in self.buffers:  # an unopened file: the editor edits it on disk
            path = Path(uri.removeprefix("file://"))
            self.buffers[uri] = path.read_text() if path.exists() else ""
        self.buffers[uri] = apply(self.buffers[uri], edits)
        if uri in self.s._versions:
            self.s._versions[uri] += 1
            self.s.client.text_document_did_change(
                lsp.DidChangeTextDocumentParams(
                    lsp.VersionedTextDocumentIdentifier(version=self.s._versions[uri], uri=uri),
                    [lsp.TextDocumentContentChangeWholeDocument(self.buffers[uri])],
                )
            )

    async def actions(
        self, uri: str, start: tuple[int, int], end: tuple[int, int] | None = None,
        diagnostics: list[lsp.Diagnostic] | None = None,
    ) -> dict[str, lsp.CodeAction]:  # fmt: skip
        end = end or start
        result = await self.s.client.text_document_code_action_async(
            lsp.CodeActionParams(
                text_document=lsp.TextDocumentIdentifier(uri),
                range=lsp.Range(lsp.Position(*start), lsp.Position(*end)),
                context=lsp.CodeActionContext(diagnostics=diagnostics or []),
            )
        )
        assert result is not None
        found = {a.title: a for a in result if isinstance(a, lsp.CodeAction)}
        assert all(a.command is not None for a in found.values())
        return found

    async def run(self, action: lsp.CodeAction) -> Any:
        assert action.command is not None
        return await self.s.command(action.command.command, *(action.command.arguments or ()))


async def editor(
    start_session: Any, fake: FakeServer, client: str = "visual_studio_code"
) -> Editor:
    options = openai_options(fake)
    options["chat"] = {"providers": ["openai"]}
    s: Session = await start_session(options, KEY, client=client)
    return Editor(s)


@pytest.mark.parametrize("client", ["visual_studio_code", "neovim"])
async def test_explain_inserts_a_comment_block_above_the_function(
    start_session: Any, openai_fake: FakeServer, client: str
) -> None:
    openai_fake.script.queue(Reply(text="Subtracts b from a.\nThe name says otherwise."))
    e = await editor(start_session, openai_fake, client)
    uri = e.open("calc.py", CALC)
    actions = await e.actions(uri, (4, 8))
    assert set(actions) == {"Reaper: Explain", "Reaper: Add docstring", "Reaper: Write tests"}
    result = await e.run(actions["Reaper: Explain"])
    assert result["applied"] is True and result["provider"] == "openai"
    assert e.buffers[uri] == CALC.replace(
        "def add", "# Subtracts b from a.\n# The name says otherwise.\ndef add"
    )
    prompt = openai_fake.script.requests[0].body["messages"][-1]["content"]
    assert (
        "Selected (lines 4-5 of calc.py (python)):\n```\ndef add(a, b):\n    return a - b\n```"
        in (prompt)
    )
    versioned = client == "visual_studio_code"
    assert (e.applied[0].document_changes is not None) == versioned


async def test_fix_uses_the_diagnostics_and_replaces_the_selection(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="```python\nreturn a + b\n```"))
    e = await editor(start_session, openai_fake)
    uri = e.open("calc.py", CALC)
    problem = lsp.Diagnostic(
        lsp.Range(lsp.Position(4, 11), lsp.Position(4, 16)), "add() subtracts", source="lint"
    )
    actions = await e.actions(uri, (4, 0), (5, 0), [problem])
    fix = actions["Reaper: Fix"]
    assert fix.kind == lsp.CodeActionKind.QuickFix and fix.diagnostics
    await e.run(fix)
    assert e.buffers[uri] == CALC.replace("a - b", "a + b")
    prompt = openai_fake.script.requests[0].body["messages"][-1]["content"]
    assert "line 5: add() subtracts" in prompt


async def test_add_docstring_replaces_the_function_with_the_documented_one(
    start_session: Any, openai_fake: FakeServer
) -> None:
    answer = 'Here:\n```python\ndef add(a, b):\n    """Add."""\n    return a - b\n```\n'
    openai_fake.script.queue(Reply(text=answer))
    e = await editor(start_session, openai_fake)
    uri = e.open("calc.py", CALC)
    await e.run((await e.actions(uri, (3, 3)))["Reaper: Add docstring"])
    assert e.buffers[uri] == CALC.replace("b):\n", 'b):\n    """Add."""\n')


async def test_write_tests_creates_the_test_file_where_the_client_can(
    start_session: Any, openai_fake: FakeServer, workspace: Path
) -> None:
    (workspace / "tests").mkdir()
    code = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3"
    openai_fake.script.queue(Reply(text=f"```python\n{code}\n```"))
    e = await editor(start_session, openai_fake)
    uri = e.open("calc.py", CALC)
    result = await e.run((await e.actions(uri, (4, 4)))["Reaper: Write tests"])
    target = (workspace / "tests" / "test_calc.py").as_uri()
    assert result["applied"] is True and result["path"].endswith("tests/test_calc.py")
    assert isinstance(e.applied[0].document_changes[0], lsp.CreateFile)  # type: ignore[index]
    assert e.buffers[target] == code + "\n"
    assert e.buffers[uri] == CALC


async def test_write_tests_appends_to_an_existing_test_file(
    start_session: Any, openai_fake: FakeServer, workspace: Path
) -> None:
    (workspace / "test_calc.py").write_text("import calc\n")
    openai_fake.script.queue(Reply(text="```python\ndef test_add():\n    assert True\n```"))
    e = await editor(start_session, openai_fake, "neovim")
    uri = e.open("calc.py", CALC)
    await e.run((await e.actions(uri, (4, 4)))["Reaper: Write tests"])
    target = (workspace / "test_calc.py").as_uri()
    assert e.buffers[target] == "import calc\n\ndef test_add():\n    assert True\n"


async def test_write_tests_without_file_creation_returns_the_tests(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="```python\ndef test_add():\n    pass\n```"))
    e = await editor(start_session, openai_fake, "neovim")
    uri = e.open("calc.py", CALC)
    result = await e.run((await e.actions(uri, (4, 4)))["Reaper: Write tests"])
    assert result["applied"] is False and "def test_add" in result["text"]
    assert e.applied == []


async def test_in_buffer_chat_replaces_the_marker_line_with_the_answer(
    start_session: Any, openai_fake: FakeServer
) -> None:
    text = "xs = [3, 1, 2]\n    # >>> how do I sort this?\nprint(xs)\n"
    openai_fake.script.queue(Reply(text="Use sorted:\n```python\nxs = sorted(xs)\n```\nDone."))
    e = await editor(start_session, openai_fake)
    uri = e.open("a.py", text)
    actions = await e.actions(uri, (1, 5))
    answer = actions["Reaper: Answer: how do I sort this?"]
    await e.run(answer)
    assert e.buffers[uri] == (
        "xs = [3, 1, 2]\n    # Use sorted:\n    xs = sorted(xs)\n    # Done.\nprint(xs)\n"
    )
    prompt = openai_fake.script.requests[0].body["messages"][-1]["content"]
    assert "the user asks: how do I sort this?" in prompt


async def test_no_chat_action_without_the_marker(
    start_session: Any, openai_fake: FakeServer
) -> None:
    e = await editor(start_session, openai_fake)
    uri = e.open("a.py", "# how do I sort this?\n")
    assert not [t for t in await e.actions(uri, (0, 3)) if t.startswith("Reaper: Answer")]


async def test_an_action_on_a_changed_document_is_refused(
    start_session: Any, openai_fake: FakeServer
) -> None:
    e = await editor(start_session, openai_fake)
    uri = e.open("calc.py", CALC)
    explain = (await e.actions(uri, (4, 4)))["Reaper: Explain"]
    e.s.type_text(uri, 0, 0, "#")
    with pytest.raises(Exception, match="document changed since the action was offered"):
        await e.run(explain)
    assert openai_fake.script.requests == []
    assert e.applied == []
    assert any("changed" in m.message for m in e.s.client.messages)


async def test_a_document_changed_while_answering_is_not_edited(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="A slow explanation.", chunk_size=2, chunk_delay=0.1))
    e = await editor(start_session, openai_fake)
    uri = e.open("calc.py", CALC)
    explain = (await e.actions(uri, (4, 4)))["Reaper: Explain"]
    import asyncio

    pending = asyncio.ensure_future(e.run(explain))
    assert await asyncio.to_thread(openai_fake.script.wait_for_requests, 1, 10)
    e.s.type_text(uri, 0, 0, "#")
    with pytest.raises(Exception, match="changed"):
        await pending
    assert e.applied == []
