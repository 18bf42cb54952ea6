"""What the editor set-ups tell users is true: endpoints and keys go in reaper.toml and the
environment (never an editor's settings, which the server ignores for them), each README says
which settings channel the user alone controls, every provider name in an example is one the
server accepts, and the Zed extension reads no settings a project could write."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reaper_lsp import config
from reaper_lsp.settings import PROVIDER_NAMES

ROOT = Path(__file__).resolve().parents[2]
EDITORS = ROOT / "editors"
NAMES = ("emacs", "helix", "neovim", "vim", "vscode", "zed")
EXAMPLES = [
    EDITORS / "emacs" / "reaper-lsp.el",
    EDITORS / "helix" / "languages.toml",
    EDITORS / "neovim" / "reaper.lua",
    EDITORS / "neovim" / "lua" / "reaper" / "init.lua",
    EDITORS / "vim" / "reaper.vim",
    EDITORS / "vscode" / "package.json",
    EDITORS / "zed" / "settings.json",
]
READMES = [EDITORS / name / "README.md" for name in NAMES]


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", NAMES)
def test_each_readme_says_where_endpoints_and_keys_go_and_what_only_the_user_controls(
    name: str,
) -> None:
    readme = " ".join(text(EDITORS / name / "README.md").split())
    assert "Where endpoints and keys go" in readme
    assert "reaper.toml" in readme and "environment" in readme
    assert "What only you control" in readme
    assert "`completion`, `chat` and `privacy`" in readme  # what the editor's settings may set


@pytest.mark.parametrize("path", [*EXAMPLES, *READMES], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_editor_setting_is_said_to_take_every_key_of_reaper_toml(path: Path) -> None:
    assert not re.search(r"same keys as reaper\.toml", text(path), re.IGNORECASE)


def provider_lists(source: str) -> list[list[str]]:
    """Every list of provider names an example writes: `providers = [...]`, `"providers":
    [...]`, Lua's `providers = { ... }`, a plist's `:providers [...]`."""
    found = re.finditer(r"providers\W{0,6}[\[{]([^\]}]*)[\]}]", source.replace('\\"', '"'))
    return [re.findall(r"""["']([^"']+)["']""", match.group(1)) for match in found]


@pytest.mark.parametrize("path", [*EXAMPLES, *READMES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_provider_name_in_an_example_is_one_the_server_accepts(path: Path) -> None:
    for names in provider_lists(text(path)):
        unknown = [n for n in names if n not in PROVIDER_NAMES]
        assert not unknown, f"{path.name}: {unknown} in {names}"
        assert not config.load(env={}, init_options={"completion": {"providers": names}}).errors


def test_the_provider_lists_are_found() -> None:
    assert provider_lists('x = {"completion": {"providers": ["copilot", "offline"]}}') == [
        ["copilot", "offline"]
    ]
    assert provider_lists('(:completion (:providers [\\"copilot\\" \\"ollama\\"]))') == [
        ["copilot", "ollama"]
    ]
    assert provider_lists("{ completion = { providers = { 'copilot' } } }") == [["copilot"]]


def test_the_zed_extension_reads_no_settings_a_project_could_write() -> None:
    source = text(EDITORS / "zed" / "src" / "lib.rs")
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("//"))
    assert "for_worktree" not in code and "LspSettings" not in code
    assert "fn language_server_initialization_options" not in code
    assert "fn language_server_workspace_configuration" not in code


def test_the_main_readme_names_the_sections_editors_and_workspaces_may_set() -> None:
    readme = " ".join(text(ROOT / "README.md").split())
    sections = sorted(config._SESSION_SECTIONS)
    assert sections == ["chat", "completion", "privacy"]
    assert "may set only `[completion]`, `[chat]` and `[privacy]`" in readme
