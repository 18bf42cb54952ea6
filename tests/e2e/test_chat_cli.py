"""`reaper-lsp chat` as a user runs it, against the OpenAI fake: streamed and sanitised
answers, files and lines attached, `--continue`, the interactive prompt and its Ctrl-C."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import isolated_env
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

BIN = Path(sys.executable).parent


def environment(home: Path, fake: FakeServer) -> dict[str, str]:
    config = home / "chat.toml"
    config.write_text(
        f'[chat]\nproviders = ["openai"]\n\n[providers.openai]\nbase_url = "{fake.base_url}/v1"\n',
        encoding="utf-8",
    )
    return isolated_env(home, REAPER_CONFIG=str(config), OPENAI_API_KEY="sk-test")


def chat(
    home: Path, fake: FakeServer, *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "reaper-lsp"), "chat", *args],
        env=environment(home, fake),
        cwd=cwd or home,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def sent(fake: FakeServer, index: int) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in fake.script.requests[index].body["messages"]]


def test_a_question_streams_the_answer_without_escape_sequences(
    home: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="Use \x1b]52;c;QUJD\x07sorted(\x1b[2Jxs).", chunk_size=3))
    done = chat(home, openai_fake, "How do I sort?")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Use sorted(xs).\n"
    assert sent(openai_fake, 0) == [("user", "How do I sort?")]


def test_a_file_and_lines_are_attached(
    home: Path, openai_fake: FakeServer, workspace: Path
) -> None:
    source = workspace / "calc.py"
    source.write_text("import os\n\ndef add(a, b):\n    return a - b\n", encoding="utf-8")
    openai_fake.script.queue(Reply(text="It subtracts."))
    done = chat(home, openai_fake, "What is wrong?", "--file", str(source), "--lines", "3:4")
    assert done.returncode == 0, done.stderr
    question = sent(openai_fake, 0)[0][1]
    assert (
        "Selected (lines 3-4 of calc.py):\n```\ndef add(a, b):\n    return a - b\n```" in question
    )
    assert "import os" in question  # the whole file, too


def test_bad_lines_are_a_usage_error(home: Path, openai_fake: FakeServer, workspace: Path) -> None:
    source = workspace / "calc.py"
    source.write_text("x = 1\n", encoding="utf-8")
    done = chat(home, openai_fake, "Why?", "--file", str(source), "--lines", "2:9")
    assert done.returncode == 2
    assert "--lines 2:9: lines are 1 to 1" in done.stderr
    assert openai_fake.script.requests == []


def test_continue_takes_up_the_last_conversation(home: Path, openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(text="Paris."), Reply(text="About 2 million."), Reply(text="?"))
    assert chat(home, openai_fake, "Capital of France?").returncode == 0
    done = chat(home, openai_fake, "How many people live there?", "--continue")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "About 2 million.\n"
    assert sent(openai_fake, 1) == [
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
        ("user", "How many people live there?"),
    ]
    saved = home / "state" / "reaper-lsp" / "chat.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    chat(home, openai_fake, "Fresh start")
    assert sent(openai_fake, 2) == [("user", "Fresh start")]


def test_interactive_prompt_answers_each_line_in_one_conversation(
    home: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="One."), Reply(text="Two."))
    done = chat(home, openai_fake, stdin="first?\n\nsecond?\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "One.\nTwo.\n"
    assert sent(openai_fake, 1) == [("user", "first?"), ("assistant", "One."), ("user", "second?")]


def test_ctrl_c_stops_the_answer_upstream_and_the_prompt_goes_on(
    home: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="Counting: 1 2 3", hold_open=True), Reply(text="Bye."))
    process = subprocess.Popen(
        [str(BIN / "reaper-lsp"), "chat"],
        env=environment(home, openai_fake),
        cwd=home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdin is not None
        process.stdin.write("count forever\n")
        process.stdin.flush()
        assert process.stdout is not None
        assert process.stdout.read(len("Counting: 1 2 3")) == "Counting: 1 2 3"
        process.send_signal(signal.SIGINT)  # while the fake holds the stream open
        assert openai_fake.script.requests[0].disconnected.wait(10)
        out, err = process.communicate("stop\n", timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out == "\nBye.\n"
    assert "(answer stopped)" in err
    assert not openai_fake.script.requests[0].completed.is_set()
    assert sent(openai_fake, 1) == [("user", "stop")]  # the stopped answer is not history
