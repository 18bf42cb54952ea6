"""Real Emacs as the client: a batch Emacs 28 (Debian's `emacs-nox`) loads
editors/emacs/reaper-lsp.el, starts `reaper-lsp` through eglot or lsp-mode as the README says,
completes a line with the offline engine and runs the `reaper-status` and sign-in commands."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import isolated_env
from tests.fakes import github as fake_github
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "emacs" / "complete.el"
EMACS = shutil.which("emacs")
ELPA = Path("/usr/share/emacs/site-lisp/elpa")

# The offline engine finishes the block after a comment line it has seen before: a multi-line,
# multi-word suggestion, so a client that keeps only a word or a line is caught.
SOURCE = (
    "def first(items):\n"
    "    # show every item\n"
    "    for item in items:\n"
    "        print(item, flush=True)\n"
    "\n"
    "\n"
    "def second(items):\n"
    "    # show every item\n"
    "    \n"
)
LINE, COLUMN = 9, 4  # the blank line of second(); 1-based line, 0-based column
COMPLETED = SOURCE[: -len("    \n")] + "    for item in items:\n        print(item, flush=True)\n"


def _has(package: str) -> bool:
    return any(ELPA.glob(f"{package}-[0-9]*"))


needs_emacs = pytest.mark.skipif(
    EMACS is None, reason="needs Emacs (apt-get install emacs-nox; .ci/run installs it as root)"
)
needs_eglot = pytest.mark.skipif(
    not _has("eglot"), reason="needs Debian's elpa-eglot (.ci/run installs it as root)"
)
needs_lsp_mode = pytest.mark.skipif(
    not (_has("lsp-mode") and _has("company")),
    reason="needs Debian's elpa-lsp-mode and elpa-company (.ci/run installs them as root)",
)


@pytest.fixture
def github_fake() -> Iterator[FakeServer]:
    server = FakeServer(fake_github.create_app())
    server.start()
    server.app.state.base_url = server.base_url
    server.app.state.device_interval = 0
    server.app.state.slow_down_interval = 0
    try:
        yield server
    finally:
        server.stop()


def run_editor(argv: list[str], source: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run an editor script that writes its findings to $REAPER_TEST_OUT; return them.

    `reaper-lsp` is put on PATH, as the README's install gives the user. The editor runs in a
    session of its own, killed whole afterwards, so no server outlives the test."""
    out = source.parent.parent / "result.json"
    env = {**env, "REAPER_TEST_FILE": str(source), "REAPER_TEST_OUT": str(out)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=source.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        log, _ = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert out.exists(), f"{argv[0]} wrote no result:\n{log}"
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert result.get("error") is None, f"{result.get('error')}\n{log}"
    return result


def write_source(tmp_path: Path, text: str) -> Path:
    source = tmp_path / "project" / "items.py"
    source.parent.mkdir(exist_ok=True)
    source.write_text(text, encoding="utf-8")
    return source


def run_emacs(tmp_path: Path, home: Path, client: str, **extra: str) -> dict[str, Any]:
    """Run complete.el in a batch Emacs on SOURCE."""
    assert EMACS is not None
    env = isolated_env(
        home,
        REAPER_TEST_CLIENT=client,
        REAPER_EMACS_DIR=str(ROOT / "editors" / "emacs"),
        REAPER_TEST_LINE=str(LINE),
        REAPER_TEST_COLUMN=str(COLUMN),
        **extra,
    )
    return run_editor(
        [EMACS, "--batch", "-Q", "-l", str(SCRIPT)], write_source(tmp_path, SOURCE), env
    )


def chat_through_openai(home: Path, fake: FakeServer, answer: str) -> None:
    """Chat goes to the fake OpenAI server; completion stays with the offline engine."""
    fake.script.default = Reply(text=answer, chunk_size=5)
    config = home / "config" / "reaper-lsp"
    config.mkdir(parents=True)
    (config / "reaper.toml").write_text(
        f'[completion]\nproviders = []\n\n[chat]\nproviders = ["openai"]\n\n'
        f'[providers.openai]\nbase_url = "{fake.base_url}/v1"\n',
        encoding="utf-8",
    )


def reject_the_key(home: Path, fake: FakeServer) -> None:
    """Completion asks the fake OpenAI server first, which turns every key away with a 401."""
    fake.script.default = Reply(
        status=401, body={"error": {"message": "Incorrect API key provided."}}
    )
    config = home / "config" / "reaper-lsp"
    config.mkdir(parents=True)
    (config / "reaper.toml").write_text(
        f'[completion]\nproviders = ["openai"]\n\n'
        f'[providers.openai]\nbase_url = "{fake.base_url}/v1"\n',
        encoding="utf-8",
    )


def assert_status(result: dict[str, Any]) -> None:
    assert result["status_chain"][-1] == "local"
    assert result["status_message"].startswith(f"reaper-lsp {result['status_version']} · ")
    assert "completion: " in result["status_message"]
    details = json.loads(result["status_buffer"])
    assert details["version"] == result["status_version"]
    assert "local" in details["providers"]


@needs_emacs
@needs_eglot
def test_eglot_completion_at_point_inserts_the_whole_suggestion(tmp_path: Path, home: Path) -> None:
    result = run_emacs(tmp_path, home, "eglot")
    assert result["server"] == "reaper-lsp"
    assert result["text"] == COMPLETED
    assert_status(result)


@needs_emacs
@needs_eglot
def test_eglot_sign_in_shows_and_copies_the_code_and_finishes(
    tmp_path: Path, home: Path, github_fake: FakeServer
) -> None:
    config = home / "config" / "reaper-lsp"
    config.mkdir(parents=True)
    (config / "reaper.toml").write_text(
        f'[providers.copilot]\ngithub_url = "{github_fake.base_url}"\n'
        f'github_api_url = "{github_fake.base_url}"\n',
        encoding="utf-8",
    )
    result = run_emacs(tmp_path, home, "eglot", REAPER_TEST_SIGN_IN="1")
    code = result["sign_in_code"]
    assert code.startswith("ABCD-")
    assert code in result["sign_in_prompt"] and "copied" in result["sign_in_prompt"]
    assert result["browsed"] == [github_fake.base_url + "/login/device"]
    assert result["signed_in"].startswith("reaper-lsp: signed in to copilot as ")
    assert result["signed_out"] == "reaper-lsp: signed out of copilot"


@needs_emacs
@needs_eglot
def test_eglot_chat_shows_the_answer_in_its_buffer(
    tmp_path: Path, home: Path, openai_fake: FakeServer
) -> None:
    chat_through_openai(home, openai_fake, "Use sum(items).")
    result = run_emacs(
        tmp_path, home, "eglot", REAPER_TEST_CHAT="How do I add them up?", OPENAI_API_KEY="sk-test"
    )
    assert result["text"] == COMPLETED  # the offline engine still completes
    assert result["chat_buffer"] == "\n> How do I add them up?\n\nUse sum(items).\n"
    assert result["chat_message"] == "reaper-lsp: chat answered by openai"
    asked = openai_fake.script.requests[-1].body["messages"][-1]["content"]
    assert asked.startswith("How do I add them up?") and "def second(items):" in asked


@needs_emacs
@needs_eglot
def test_eglot_shows_a_rejected_api_key_and_the_offline_engine_completes(
    tmp_path: Path, home: Path, openai_fake: FakeServer
) -> None:
    reject_the_key(home, openai_fake)
    result = run_emacs(
        tmp_path, home, "eglot", OPENAI_API_KEY="sk-wrong", REAPER_TEST_WAIT_MESSAGE="401"
    )
    assert result["text"] == COMPLETED
    shown = [m for m in result["messages"] if "401" in m]
    assert shown and "openai" in shown[0].lower(), result["messages"]
    assert "sk-wrong" not in " ".join(result["messages"])


@needs_emacs
@needs_lsp_mode
def test_lsp_mode_with_company_inserts_the_whole_suggestion(tmp_path: Path, home: Path) -> None:
    result = run_emacs(tmp_path, home, "lsp-mode", REAPER_TEST_UI="company")
    assert result["server"] == "reaper-lsp"
    assert result["text"] == COMPLETED
    assert_status(result)


@needs_emacs
@needs_lsp_mode
def test_lsp_mode_bare_completion_at_point_inserts_the_first_line_only(
    tmp_path: Path, home: Path
) -> None:
    """lsp-mode's limit, documented in editors/emacs/README.md: without company (or corfu) it
    never calls the item's exit function, so only the label, the suggestion's first line, lands."""
    result = run_emacs(tmp_path, home, "lsp-mode")
    lines = result["text"].split("\n")
    assert lines[LINE - 1] == "    for item in items:"
    assert result["text"].count("print(item, flush=True)") == 1


@needs_emacs
@needs_eglot
@needs_lsp_mode
def test_reaper_lsp_el_byte_compiles_without_warnings(tmp_path: Path) -> None:
    assert EMACS is not None
    source = tmp_path / "reaper-lsp.el"
    shutil.copy(ROOT / "editors" / "emacs" / "reaper-lsp.el", source)
    setup = (
        "(progn (require 'package)"
        f' (add-to-list \'package-directory-list "{ELPA}") (package-initialize)'
        " (setq byte-compile-error-on-warn t))"
    )
    done = subprocess.run(
        [EMACS, "--batch", "-Q", "--eval", setup, "-f", "batch-byte-compile", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reaper-lsp.elc").exists()
