"""The command line as a user runs it: the installed `reaper-lsp` script in a clean
environment (no keys, config and credentials inside a temporary home)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import isolated_env
from tests.fakes import github as fake_github
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


def test_complete_with_no_account_uses_the_offline_engine(home: Path, tmp_path: Path) -> None:
    # The demo on its own (its folder is its project): the repository's other files, which the
    # offline engine would also read from a checkout, must not decide what this test sees.
    project = tmp_path / "demo"
    project.mkdir()
    shutil.copy(ROOT / "examples" / "demo.py", project / "demo.py")
    done = run(home, "complete", "demo.py", "--line", "19", "--col", "15", cwd=project)
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


# -- global options anywhere ------------------------------------------------------------------

DEMO = ("complete", "examples/demo.py", "--line", "19", "--col", "15")


@pytest.mark.parametrize(
    "args",
    [("--log-level", "debug", *DEMO), (*DEMO, "--log-level", "debug")],
    ids=["before", "after"],
)
def test_log_level_applies_before_or_after_the_subcommand(
    home: Path, args: tuple[str, ...]
) -> None:
    done = run(home, *args)
    assert done.returncode == 0, done.stderr
    assert " DEBUG " in done.stderr


def test_log_file_before_the_subcommand_receives_the_log(home: Path) -> None:
    log = home / "reaper.log"
    done = run(home, "--log-file", str(log), "--log-level", "info", *DEMO)
    assert done.returncode == 0, done.stderr
    assert " INFO " in log.read_text(encoding="utf-8")
    assert " INFO " not in done.stderr


@pytest.mark.parametrize("command", ["complete", "status", "login", "serve"])
def test_version_and_help_after_a_subcommand(home: Path, command: str) -> None:
    version = run(home, command, "--version")
    assert version.returncode == 0 and version.stdout.startswith("reaper-lsp 0.")
    helped = run(home, command, "--help")
    assert helped.returncode == 0 and f"reaper-lsp {command}" in helped.stdout
    assert "--log-level" in helped.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--log-level", "chatty", "status"), "argument --log-level: invalid choice: 'CHATTY'"),
        (("status", "--log-level", "chatty"), "argument --log-level: invalid choice: 'CHATTY'"),
        (("serve", "--tcp", "localhost"), "argument --tcp: expected HOST:PORT"),
        (("complete", "examples/demo.py", "--line", "x", "--col", "1"), "argument --line"),
    ],
)
def test_bad_option_values_are_usage_errors(
    home: Path, args: tuple[str, ...], expected: str
) -> None:
    done = run(home, *args)
    assert done.returncode == 2
    assert expected in done.stderr and "usage: reaper-lsp" in done.stderr
    assert "Traceback" not in done.stderr


# -- complete: positions, files, the project, what reaches the terminal -----------------------


def demo_line_count() -> int:
    return len((ROOT / "examples" / "demo.py").read_text(encoding="utf-8").split("\n"))


@pytest.mark.parametrize(
    ("line", "col", "expected"),
    [
        ("0", "1", "lines are 1 to {lines}"),
        ("-3", "1", "lines are 1 to {lines}"),
        ("{past}", "1", "past the end of examples/demo.py: lines are 1 to {lines}"),
        ("19", "500", "columns are 1 to 15"),
        ("19", "16", "columns are 1 to 15"),
        ("19", "0", "columns are 1 to 15"),
    ],
)
def test_position_outside_the_file_names_the_valid_range(
    home: Path, line: str, col: str, expected: str
) -> None:
    lines = demo_line_count()
    line = line.format(past=lines + 1)
    done = run(home, "complete", "examples/demo.py", "--line", line, "--col", col)
    assert done.returncode == 2
    assert expected.format(lines=lines) in done.stderr
    assert "no suggestion" not in done.stderr and done.stdout == ""


def test_last_line_and_column_just_after_its_end_are_valid(home: Path) -> None:
    lines = demo_line_count()
    done = run(home, "complete", "examples/demo.py", "--line", "19", "--col", "15")
    assert done.returncode == 0, done.stderr
    last = run(home, "complete", "examples/demo.py", "--line", str(lines), "--col", "1")
    assert last.returncode in (0, 1), last.stderr  # a position that exists: no usage error
    assert "error" not in last.stderr


@pytest.mark.parametrize("name", ["missing.py", "examples"])
def test_unreadable_file_is_a_usage_error(home: Path, name: str) -> None:
    done = run(home, "complete", name, "--line", "1", "--col", "1")
    assert done.returncode == 2
    assert f"cannot read {name}" in done.stderr
    assert "Traceback" not in done.stderr


def test_complete_reads_the_files_project_not_the_current_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "lib").mkdir()
    (project / "app" / "sub").mkdir(parents=True)
    (project / "lib" / "store.py").write_text(
        "def load_inventory(path):\n"
        '    records = read_inventory_records(path, strict=True, encoding="latin-1")\n'
        "    return records\n",
        encoding="utf-8",
    )
    target = project / "app" / "sub" / "main.py"
    target.write_text("def main(path):\n    records = read_inv\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"  # the current directory, with a different answer in it
    elsewhere.mkdir()
    (elsewhere / "decoy.py").write_text("records = read_inventory_decoy(path)\n" * 3)
    home.mkdir()
    done = run(home, "complete", str(target), "--line", "2", "--col", "23", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout == 'entory_records(path, strict=True, encoding="latin-1")\n'


def test_suggestion_reaches_the_terminal_without_control_characters(
    home: Path, openai_fake: FakeServer
) -> None:
    hostile = 'path, "a\x1b]52;c;SGVsbG8=\x07b\x1b[2J\u202ec\x00") as handle:'
    openai_fake.script.queue(Reply(text=hostile))
    done = run(
        home, *DEMO, REAPER_CONFIG=str(openai_config(home, openai_fake)), OPENAI_API_KEY="sk-test"
    )
    assert done.returncode == 0, done.stderr
    assert "# openai" in done.stderr
    assert done.stdout == 'path, "abc") as handle:\n'


def openai_config(home: Path, fake: FakeServer) -> Path:
    path = home / "openai.toml"
    path.write_text(
        f'[completion]\nproviders = ["openai"]\n\n'
        f'[providers.openai]\nbase_url = "{fake.base_url}/v1"\n',
        encoding="utf-8",
    )
    return path


# -- Ctrl-C, and a server started by hand ------------------------------------------------------


def start(
    home: Path, *args: str, stdin: Any = subprocess.PIPE, **env: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / "reaper-lsp"), *args],
        env=isolated_env(home, **env),
        cwd=ROOT,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def interrupt(process: subprocess.Popen[bytes]) -> str:
    """Ctrl-C: SIGINT, as the terminal sends it; the process's stderr afterwards."""
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return err.decode("utf-8", "replace")


def assert_quiet_exit(process: subprocess.Popen[bytes], stderr: str) -> None:
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Fatal" not in stderr
    assert len(stderr.strip().splitlines()) <= 1, stderr


def lsp_send(process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    assert process.stdin is not None
    process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    process.stdin.flush()


def lsp_receive(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    assert process.stdout is not None
    length = 0
    while line := process.stdout.readline().strip():
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    message: dict[str, Any] = json.loads(process.stdout.read(length))
    return message


def lsp_request(process: subprocess.Popen[bytes], id: int, method: str, params: Any) -> Any:
    lsp_send(process, {"id": id, "method": method, "params": params})
    while True:
        message = lsp_receive(process)
        if message.get("id") == id and "method" not in message:
            return message.get("result")


def test_ctrl_c_ends_the_stdio_server_quietly(home: Path, workspace: Path) -> None:
    server = start(home)
    result = lsp_request(
        server, 1, "initialize", {"capabilities": {}, "rootUri": workspace.as_uri()}
    )
    assert "capabilities" in result
    assert_quiet_exit(server, interrupt(server))


def read_until(process: subprocess.Popen[bytes], marker: str, timeout: float = 20) -> str:
    """The process's stderr up to `marker`; fails (never hangs) if it does not come."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} on stderr in {timeout} s: {seen!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"stderr closed before {marker!r}: {seen!r}"
            seen += chunk
    return seen.decode("utf-8", "replace")


def test_bare_server_on_a_terminal_explains_itself_and_ends_at_the_first_ctrl_c(
    home: Path,
) -> None:
    controller, terminal = pty.openpty()
    try:
        server = start(home, stdin=terminal)
        try:
            text = read_until(server, "Ctrl-C quits")
        finally:
            stderr = interrupt(server)
    finally:
        os.close(controller)
        os.close(terminal)
    assert "language server" in text and "editor" in text
    assert "editors/" in text and "reaper-lsp complete FILE --line L --col C" in text
    assert_quiet_exit(server, stderr)


def test_ctrl_c_during_a_completion_ends_it_quietly(home: Path, openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(text="never", first_byte_delay=30))
    process = start(
        home, *DEMO, REAPER_CONFIG=str(openai_config(home, openai_fake)), OPENAI_API_KEY="sk-test"
    )
    deadline = time.monotonic() + 20
    while not openai_fake.script.requests:  # the request is in flight: interrupt it now
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    stderr = interrupt(process)
    assert_quiet_exit(process, stderr)
    assert process.stdout is not None


@pytest.fixture
def github_fake() -> Iterator[FakeServer]:
    server = FakeServer(fake_github.create_app())
    server.start()
    server.app.state.base_url = server.base_url
    try:
        yield server
    finally:
        server.stop()


def github_config(home: Path, fake: FakeServer) -> Path:
    path = home / "github.toml"
    path.write_text(
        f'[providers.copilot]\ngithub_url = "{fake.base_url}"\n'
        f'github_api_url = "{fake.base_url}"\n',
        encoding="utf-8",
    )
    return path


def test_ctrl_c_while_login_waits_for_github_ends_it_quietly(
    home: Path, github_fake: FakeServer
) -> None:
    github_fake.app.state.device_interval = 1
    github_fake.app.state.polls = ["authorization_pending"] * 600
    config = github_config(home, github_fake)
    process = start(home, "login", "copilot", "--no-browser", REAPER_CONFIG=str(config))
    assert process.stdout is not None
    assert "ABCD-" in process.stdout.readline().decode()
    assert_quiet_exit(process, interrupt(process))
    assert (
        not (home / "data" / "reaper-lsp" / "auth.json").exists()
        or json.loads((home / "data" / "reaper-lsp" / "auth.json").read_text()) == {}
    )


# -- login / logout ----------------------------------------------------------------------------


def test_login_shows_what_github_sent_without_its_escape_sequences(
    home: Path, github_fake: FakeServer
) -> None:
    github_fake.app.state.device_interval = 0
    github_fake.app.state.polls = []
    github_fake.app.state.user = "octo\x1b]52;c;SGVsbG8=\x07\x1b[2Jcat\u202e"
    done = run(
        home,
        "login",
        "copilot",
        "--no-browser",
        REAPER_CONFIG=str(github_config(home, github_fake)),
    )
    assert done.returncode == 0, done.stderr
    assert "Signed in to GitHub as octocat; Copilot is ready." in done.stdout
    assert "\x1b" not in done.stdout + done.stderr and "\u202e" not in done.stdout


def test_logout_when_never_signed_in_says_so(home: Path) -> None:
    for provider in ("copilot", "google"):
        done = run(home, "logout", provider)
        assert done.returncode == 0, done.stderr
        assert f"not signed in to {provider}" in done.stdout.lower()
        assert "signed out" not in done.stdout.lower()


def test_login_help_says_what_happens(home: Path) -> None:
    done = run(home, "login", "copilot", "--help")
    assert done.returncode == 0
    assert "--no-browser" in done.stdout
    assert "login/device" in done.stdout and "one-time code" in done.stdout


# -- status ------------------------------------------------------------------------------------


def ollama_config(home: Path, base_url: str) -> Path:
    path = home / "ollama.toml"
    path.write_text(
        f'[completion]\nproviders = ["ollama"]\n[chat]\nproviders = ["ollama"]\n\n'
        f'[providers.ollama]\nbase_url = "{base_url}"\n',
        encoding="utf-8",
    )
    return path


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_status_says_ollama_is_not_running_when_nothing_listens(home: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    done = run(home, "status", REAPER_CONFIG=str(ollama_config(home, url)))
    assert done.returncode == 0, done.stderr
    assert f"ollama   not running at {url}" in done.stdout
    assert "ollama   ready" not in done.stdout


def test_status_says_ollama_is_ready_when_it_answers(home: Path, ollama_fake: FakeServer) -> None:
    done = run(home, "status", REAPER_CONFIG=str(ollama_config(home, ollama_fake.base_url)))
    assert done.returncode == 0, done.stderr
    assert f"ollama   ready at {ollama_fake.base_url}" in done.stdout
    assert "openai   not used" in done.stdout
    assert "local    ready" in done.stdout


def test_status_flags_a_missing_config_file_named_by_reaper_config(home: Path) -> None:
    missing = home / "nowhere" / "reaper.toml"
    done = run(home, "status", REAPER_CONFIG=str(missing))
    assert done.returncode == 0, done.stderr
    assert f"config file: {missing} NOT FOUND (named by REAPER_CONFIG)" in done.stdout


def test_status_is_short_and_summarises_the_last_server_run(home: Path, workspace: Path) -> None:
    server = start(home)
    lsp_request(server, 1, "initialize", {"capabilities": {}, "rootUri": workspace.as_uri()})
    lsp_send(server, {"method": "initialized", "params": {}})
    lsp_request(server, 2, "shutdown", None)
    lsp_send(server, {"method": "exit"})
    server.communicate(timeout=10)

    done = run(home, "status")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) <= 14, done.stdout
    first = next(i for i, line in enumerate(lines) if line.startswith("last server run: ended"))
    assert 3 <= len(lines) - first <= 5, done.stdout
    assert "cache: 0 hits" in done.stdout
    assert "sign-ins: GitHub (Copilot): not signed in" in done.stdout


def test_status_json_has_everything(home: Path) -> None:
    done = run(home, "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["completionChain"][-1] == "local"
    assert set(status["providers"]) >= {"copilot", "claude", "openai", "ollama", "local"}
    assert "ollama" in status["reachable"]  # in the default chain, so probed
    assert status["lastRun"] is None
