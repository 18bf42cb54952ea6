""" "Write tests" writes only inside the project: a tests file that is really elsewhere (a link
out of the project, a file opened from outside it) is refused and the tests come back in the
command's result instead; a tests file the server may not read is never taken for a missing one
(which the editor would be asked to create over it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.test_code_actions import CALC, Editor, editor
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

TESTS = "def test_add():\n    assert add(1, 2) == 3"


async def write_tests(
    start_session: Any, fake: FakeServer, path: Path
) -> tuple[Editor, dict[str, Any]]:
    """Open `path` in a client that can create files, and run "Write tests" on it."""
    fake.script.queue(Reply(text=f"```python\n{TESTS}\n```"))
    e = await editor(start_session, fake)  # VS Code's capabilities: documentChanges, create
    uri = path.as_uri()
    e.s._versions[uri] = 1
    e.buffers[uri] = CALC
    e.s.client.text_document_did_open(_did_open(uri))
    result = await e.run((await e.actions(uri, (4, 4)))["Reaper: Write tests"])
    return e, result


def _did_open(uri: str) -> Any:
    from lsprotocol import types as lsp

    return lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, CALC))


def assert_returned_not_written(e: Editor, result: dict[str, Any]) -> None:
    assert result["applied"] is False
    assert TESTS in result["text"]
    assert e.applied == []  # no applyEdit at all: nothing for the editor to write
    assert any("are in the command's result" in m.message for m in e.s.client.messages)


async def test_a_tests_file_linked_to_bashrc_is_not_written(
    start_session: Any, openai_fake: FakeServer, workspace: Path, home: Path
) -> None:
    bashrc = home / ".bashrc"
    bashrc.write_text("export PATH=$HOME/bin:$PATH\n")
    (workspace / "tests").mkdir()
    (workspace / "tests" / "test_app.py").symlink_to(bashrc)
    e, result = await write_tests(start_session, openai_fake, workspace / "app.py")
    assert_returned_not_written(e, result)
    assert result["path"] == str(workspace / "tests" / "test_app.py")
    assert bashrc.read_text() == "export PATH=$HOME/bin:$PATH\n"


async def test_a_tests_folder_linked_out_of_the_project_is_not_written(
    start_session: Any, openai_fake: FakeServer, workspace: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (workspace / "tests").symlink_to(elsewhere, target_is_directory=True)
    e, result = await write_tests(start_session, openai_fake, workspace / "app.py")
    assert_returned_not_written(e, result)
    assert list(elsewhere.iterdir()) == []


async def test_a_dangling_link_out_of_the_project_is_not_created(
    start_session: Any, openai_fake: FakeServer, workspace: Path, home: Path
) -> None:
    (workspace / "tests").mkdir()
    (workspace / "tests" / "test_app.py").symlink_to(home / ".profile")  # not there yet
    e, result = await write_tests(start_session, openai_fake, workspace / "app.py")
    assert_returned_not_written(e, result)
    assert not (home / ".profile").exists()


async def test_a_file_opened_from_outside_the_project_gets_its_tests_returned(
    start_session: Any, openai_fake: FakeServer, home: Path
) -> None:
    outside = home / "notes" / "app.py"  # beside it would be ~/notes/test_app.py
    outside.parent.mkdir()
    outside.write_text(CALC)
    e, result = await write_tests(start_session, openai_fake, outside)
    assert_returned_not_written(e, result)
    assert not (home / "notes" / "test_app.py").exists()


async def test_a_tests_file_that_cannot_be_read_is_not_taken_for_a_missing_one(
    start_session: Any, openai_fake: FakeServer, workspace: Path
) -> None:
    (workspace / "tests").mkdir()
    big = workspace / "tests" / "test_app.py"
    with big.open("wb") as out:  # over the server's size cap: refused, not truncated
        out.truncate(5 * 1024 * 1024)
    e, result = await write_tests(start_session, openai_fake, workspace / "app.py")
    assert result["applied"] is False and TESTS in result["text"]
    assert e.applied == []  # a CreateFile (ignoreIfExists) + insert would land in it
    assert big.stat().st_size == 5 * 1024 * 1024
    assert any("exists but cannot be read" in m.message for m in e.s.client.messages)
