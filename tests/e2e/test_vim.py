"""Real Vim as the client: Vim 9 with Debian's ALE (`vim-ale`) loads editors/vim/reaper.vim as
the README says, completes with ALE's omni completion (<C-x><C-o>) from the offline engine, and
runs :ReaperStatus, :ReaperSignIn and :ReaperSignOut. vim-lsp is not packaged for Debian, so its
half of reaper.vim is not driven here."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import isolated_env
from tests.e2e.test_emacs import (
    ROOT,
    chat_through_openai,
    github_fake,
    reject_the_key,
    run_editor,
    write_source,
)
from tests.fakes.runner import FakeServer

__all__ = ["github_fake"]  # a fixture, used by name

SCRIPT = Path(__file__).parent / "vim" / "complete.vim"
VIM = shutil.which("vim")
ALE = Path("/usr/share/vim/vimfiles/pack/dist-bundle/opt/ale")

pytestmark = [
    pytest.mark.skipif(
        VIM is None, reason="needs Vim (apt-get install vim; .ci/run installs it as root)"
    ),
    pytest.mark.skipif(
        not ALE.exists(), reason="needs Debian's vim-ale (.ci/run installs it as root)"
    ),
]

TEMPLATE = (
    "def first(items):\n    # {comment}\n    for item in items:\n        {body}\n\n\n"
    "def second(items):\n    # {comment}\n    \n"
)
LINE = 9  # the blank line after the repeated comment, where the offline engine offers the loop


def document(comment: str, body: str) -> str:
    return TEMPLATE.format(comment=comment, body=body)


def run_vim(tmp_path: Path, home: Path, text: str, **extra: str) -> dict[str, Any]:
    assert VIM is not None
    env = isolated_env(
        home, REAPER_VIM_DIR=str(ROOT / "editors" / "vim"), REAPER_TEST_LINE=str(LINE), **extra
    )
    argv = [VIM, "-N", "-u", "NONE", "-i", "NONE", "-n", "--not-a-term", "-S", str(SCRIPT)]
    return run_editor(argv, write_source(tmp_path, text), env)


def completed_lines(result: dict[str, Any]) -> list[str]:
    """The lines from the completed one on, as written out; the buffer must hold them as
    lines too (Vim keeps a completed text's line breaks in one line, as NULs, unless ALE's
    additional edit made them real)."""
    lines: list[str] = result["text"].split("\n")
    assert result["line_count"] == len(lines) - 1, "line breaks held inside one line"
    return lines[LINE - 1 : -1]


def test_ale_menu_inserts_a_multi_line_suggestion_and_status_round_trips(
    tmp_path: Path, home: Path
) -> None:
    result = run_vim(tmp_path, home, document("add them up", "total += item * 2"))
    assert "reaper" in result["linters"]  # added next to ALE's default Python linters
    assert completed_lines(result) == ["    for item in items:", "        total += item * 2"]
    assert result["status_line"] == result["status_message"]
    assert result["status_line"].startswith("reaper-lsp ")
    assert result["status_line"].split(" · ")[1].endswith("→ local")


def test_ale_menu_inserts_a_suggestion_with_parentheses_whole(tmp_path: Path, home: Path) -> None:
    """ALE inserts an item's text only up to its first `(` (it takes what comes after for a
    function's arguments); the rest comes as an additional edit ALE applies once the item is
    inserted."""
    result = run_vim(tmp_path, home, document("show every item", "print(item, flush=True)"))
    assert completed_lines(result) == ["    for item in items:", "        print(item, flush=True)"]
    assert "print(item, flush=True)" in result["items"][0]["info"]


def test_sign_in_and_out_through_ale(tmp_path: Path, home: Path, github_fake: FakeServer) -> None:
    config = home / "config" / "reaper-lsp"
    config.mkdir(parents=True)
    (config / "reaper.toml").write_text(
        f'[providers.copilot]\ngithub_url = "{github_fake.base_url}"\n'
        f'github_api_url = "{github_fake.base_url}"\n',
        encoding="utf-8",
    )
    result = run_vim(
        tmp_path, home, document("add them up", "total += item"), REAPER_TEST_SIGN_IN="1"
    )
    code = result["sign_in_code"]
    assert code.startswith("ABCD-")
    messages = result["messages"]
    assert f"reaper-lsp: enter code {code} at {github_fake.base_url}/login/device (copied)" in (
        messages
    )
    assert any(m.startswith("reaper-lsp: signed in to copilot as ") for m in messages), messages
    assert "reaper-lsp: signed out of copilot" in messages


def test_rejected_api_key_is_shown_and_the_offline_engine_completes(
    tmp_path: Path, home: Path, openai_fake: FakeServer
) -> None:
    reject_the_key(home, openai_fake)
    result = run_vim(
        tmp_path,
        home,
        document("add them up", "total += item * 2"),
        OPENAI_API_KEY="sk-wrong",
        REAPER_TEST_WAIT_MESSAGE="401",
    )
    assert completed_lines(result) == ["    for item in items:", "        total += item * 2"]
    shown = [m for m in result["messages"] if "401" in m]
    assert shown and "openai" in shown[0].lower(), result["messages"]
    assert "sk-wrong" not in " ".join(result["messages"])


def test_chat_through_ale_opens_the_answer_in_a_split(
    tmp_path: Path, home: Path, openai_fake: FakeServer
) -> None:
    chat_through_openai(home, openai_fake, "Use sum(items).\nOr a loop.")
    result = run_vim(
        tmp_path,
        home,
        document("add them up", "total += item"),
        REAPER_TEST_CHAT="How do I add them up?",
        OPENAI_API_KEY="sk-test",
    )
    assert result["chat_window"] == "[reaper-chat]"
    assert result["chat_buffer"] == "Use sum(items).\nOr a loop."
    asked = openai_fake.script.requests[-1].body["messages"][-1]["content"]
    assert asked.startswith("How do I add them up?") and "def second(items):" in asked
