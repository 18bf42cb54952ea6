"""What the command line promises beyond its happy path, as a user runs it: a damaged saved
conversation starts a new one and says so, the interactive chat's exit status is its last
answer's, `complete -` reads the buffer from standard input, output into a pipe whose reader has
gone ends quietly, `status` reports what is wrong with the config file, and no config message
ever echoes a secret's value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import isolated_env
from tests.e2e.test_chat_cli import chat, environment, sent
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

BIN = Path(sys.executable).parent
REAPER = str(BIN / "reaper-lsp")


def run(
    home: Path, *args: str, stdin: str = "", config: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    if config is not None:
        path = home / "reaper.toml"
        path.write_text(config, encoding="utf-8")
        env["REAPER_CONFIG"] = str(path)
    return subprocess.run(
        [REAPER, *args],
        env=isolated_env(home, **env),
        cwd=home,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- a damaged chat.json -----------------------------------------------------------------------

DAMAGED = {
    "a list": "[1, 2, 3]",
    "a string": '"hello"',
    "null": "null",
    "turns = 5": '{"id": "terminal", "turns": 5}',
    "deeply nested [": "[" * 100_000,
    "not JSON": "{turns: [",
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_continue_with_a_damaged_conversation_starts_a_new_one_and_says_so(
    home: Path, openai_fake: FakeServer, content: str
) -> None:
    saved = home / "state" / "reaper-lsp" / "chat.json"
    saved.parent.mkdir(parents=True)
    saved.write_text(content, encoding="utf-8")
    openai_fake.script.queue(Reply(text="Hello again."))
    done = chat(home, openai_fake, "Fresh?", "--continue")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello again.\n"
    assert f"{saved} is damaged: starting a new conversation" in done.stderr
    assert "Traceback" not in done.stderr
    assert sent(openai_fake, 0) == [("user", "Fresh?")]
    # The new conversation replaced the damaged file: the next --continue takes it up.
    assert json.loads(saved.read_text(encoding="utf-8"))["turns"][0]["content"] == "Fresh?"


# -- the interactive chat's exit status ------------------------------------------------------


def test_interactive_chat_with_no_provider_exits_with_the_failed_answers_status(
    home: Path,
) -> None:
    done = run(
        home, "chat", stdin="first?\nsecond?\n",
        config='[chat]\nproviders = ["openai"]\n',  # and no OPENAI_API_KEY
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("no chat provider could answer") == 2


def test_interactive_chat_exits_with_the_last_answers_status(
    home: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(status=400, body={"error": {"message": "bad"}}), Reply(text="B"))
    done = chat(home, openai_fake, stdin="first?\nsecond?\n")
    assert done.returncode == 0, done.stderr
    assert "bad" in done.stderr and done.stdout.endswith("B\n")


# -- complete - ------------------------------------------------------------------------------


def test_complete_reads_the_buffer_from_standard_input(home: Path, openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(text="a + b"))
    done = run(
        home, "complete", "-", "--line", "2", "--col", "12", "--language", "python",
        stdin="def add(a, b):\n    return \n",
        config=f'[completion]\nproviders = ["openai"]\n\n'
        f'[providers.openai]\nbase_url = "{openai_fake.base_url}/v1"\n',
        OPENAI_API_KEY="sk-test",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "a + b\n"
    assert "# openai" in done.stderr
    assert "def add(a, b):" in json.dumps(openai_fake.script.requests[0].body)


# -- output into a pipe whose reader has gone --------------------------------------------------


def test_chat_into_head_ends_quietly(home: Path, openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(text="word " * 200, chunk_size=5, chunk_delay=0.005))
    errors = home / "stderr.txt"
    done = subprocess.run(
        ["bash", "-c", f'"{REAPER}" chat hi 2>"{errors}" | head -c 3; echo " ${{PIPESTATUS[0]}}"'],
        env=environment(home, openai_fake),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    head, _, status = done.stdout.rpartition(" ")
    assert head == "wor"
    assert errors.read_text() == ""  # no BrokenPipeError, no "Exception ignored"
    assert int(status) in (0, 1, 128 + 13), status  # SIGPIPE, as `cat` would end


@pytest.mark.parametrize("command", [["status"], ["config"], ["status", "--json"]])
def test_output_to_a_reader_that_has_gone_ends_quietly(home: Path, command: list[str]) -> None:
    # What `| head -1` is after its line: a closed pipe. Closed before the first write, so
    # every write meets it, whatever the timing.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [REAPER, *command], stdout=write_end, stderr=subprocess.PIPE, text=True,
            env=isolated_env(home), cwd=home, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode in (1, -13), done.returncode


# -- status and config on a bad config file --------------------------------------------------


def test_status_reports_an_invalid_toml_file(home: Path) -> None:
    done = run(home, "status", config="[completion\nproviders = 1\n")
    assert done.returncode == 0, done.stderr
    assert "reaper.toml: invalid TOML, file ignored" in done.stderr
    assert "local" in done.stdout  # and still says what works: the built-in defaults


def test_status_warns_about_unknown_keys(home: Path) -> None:
    done = run(home, "status", config="[completion]\ndebounce = 10\n[nonsense]\nx = 1\n")
    assert done.returncode == 0, done.stderr
    assert "unknown key completion.debounce (ignored)" in done.stderr
    assert "unknown key nonsense (ignored)" in done.stderr


SECRETS = {
    "a number": "api_key = 123456789012345",
    "a short number": "api_key = 4242",
    "a float": "api_key = 31415926.5",
    "a boolean": "client_secret = true",
    "a list": 'api_key = ["sk-list-secret-0123456789"]',
}


@pytest.mark.parametrize("line", SECRETS.values(), ids=SECRETS.keys())
@pytest.mark.parametrize("command", ["config", "status"])
def test_a_bad_secret_value_is_never_echoed(home: Path, line: str, command: str) -> None:
    section = "auth.google" if line.startswith("client_secret") else "providers.openai"
    done = run(home, command, config=f"[{section}]\n{line}\n")
    key, value = line.split(" = ", 1)
    value = value.strip('["]')
    assert f"{section}.{key} must be" in done.stderr
    assert value not in done.stderr  # `true` is a word elsewhere on stdout, never a secret
    assert value == "true" or value not in done.stdout
