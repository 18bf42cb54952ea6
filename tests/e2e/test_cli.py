"""The command line as a user runs it: the installed `reaper-lsp` script in a clean
environment (no keys, config and credentials inside a temporary home)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import isolated_env
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(
    home: Path, *args: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "reaper-lsp"), *args],
        env=isolated_env(home, **env),
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_complete_with_no_account_uses_the_offline_engine(home: Path) -> None:
    done = run(home, "complete", "examples/demo.py", "--line", "19", "--col", "15")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("path, ")
    assert done.stdout.rstrip().endswith("as handle:")
    assert "# local" in done.stderr
    assert "Traceback" not in done.stderr


def test_complete_through_a_configured_openai_compatible_server(
    home: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text='path, "a", encoding="utf-8") as handle:'))
    config = home / "config" / "reaper-lsp"
    config.mkdir(parents=True)
    (config / "reaper.toml").write_text(
        f'[completion]\nproviders = ["openai"]\n\n'
        f'[providers.openai]\nbase_url = "{openai_fake.base_url}/v1"\n',
        encoding="utf-8",
    )
    done = run(
        home, "complete", "examples/demo.py", "--line", "19", "--col", "15",
        OPENAI_API_KEY="sk-test",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == 'path, "a", encoding="utf-8") as handle:\n'
    assert "# openai" in done.stderr
    assert openai_fake.script.requests[0].headers["authorization"] == "Bearer sk-test"


def test_config_shows_sources_and_masks_keys(home: Path) -> None:
    done = run(home, "config", OPENAI_API_KEY="sk-very-secret-key")
    assert done.returncode == 0, done.stderr
    assert "completion.providers" in done.stdout
    assert "sk-very-secret-key" not in done.stdout + done.stderr


def test_bad_config_value_names_the_key_and_the_file(home: Path) -> None:
    config = home / "config" / "reaper-lsp"
    config.mkdir(parents=True)
    (config / "reaper.toml").write_text("[completion]\ntimeout_ms = -5\n", encoding="utf-8")
    done = run(home, "config")
    assert done.returncode == 1
    assert "completion.timeout_ms" in done.stderr and "reaper.toml" in done.stderr


@pytest.mark.parametrize("command", [["reaper-lsp"], [sys.executable, "-m", "reaper_lsp"]])
def test_version(home: Path, command: list[str]) -> None:
    exe = [str(BIN / "reaper-lsp")] if command == ["reaper-lsp"] else command
    done = subprocess.run(
        [*exe, "--version"], env=isolated_env(home), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    assert done.stdout.startswith("reaper-lsp 0.")


def test_status_without_a_server_run(home: Path) -> None:
    done = run(home, "status")
    assert done.returncode == 0, done.stderr
    assert "local" in done.stdout
