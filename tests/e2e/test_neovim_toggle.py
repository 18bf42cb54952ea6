"""`:Reaper toggle [global|language|workspace]` in headless Neovim with the plugin: each scope
turns suggestions off (no request reaches the provider, the answer is empty, no error) and on
again, and the user is told which in one line."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_neovim import NVIM, needs_012, openai_setup, run_plugin, write_source
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply


@needs_012
def test_reaper_toggle_turns_suggestions_off_and_on_by_scope(
    tmp_path: Path, home: Path, openai_fake: FakeServer
) -> None:
    assert NVIM is not None
    openai_fake.script.default = Reply(text="name.upper()")
    source = write_source(tmp_path, "greet.py", "def greet(name):\n    return \n")
    setup = openai_setup(openai_fake) | {"ghost_text": False}
    result = run_plugin(
        NVIM, "plugin_toggle.lua", tmp_path, home, source, setup, OPENAI_API_KEY="sk-test"
    )
    assert result["language_off"] == "reaper-lsp: suggestions off for python"
    assert result["items_language_off"] == 0
    assert result["language_on"] == "reaper-lsp: suggestions on for python"
    assert result["items_language_on"] == 1
    assert result["global_off"] == "reaper-lsp: suggestions off everywhere"
    assert result["items_global_off"] == 0
    assert result["global_on"] == "reaper-lsp: suggestions on everywhere"
    assert result["workspace_off"] == f"reaper-lsp: suggestions off in {source.parent}"
    assert "is not one of: global, language, workspace" in result["bad_scope"]
    completions = [r for r in openai_fake.script.requests if r.method == "POST"]
    assert len(completions) == 1  # only while suggestions were on
