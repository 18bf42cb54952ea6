"""Copilot for a real user, through the server over stdio: sign in with the LSP commands (or
`reaper-lsp login copilot`), get ghost text from the Copilot proxy, survive token expiry and
401s without asking the user again, sign out, and never leak a token."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp

from tests.e2e.conftest import Session, isolated_env
from tests.fakes import github as fake_github
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

PY = "def greet(name):\n    return \n"


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


def options(fake: FakeServer) -> dict[str, Any]:
    return {
        "completion": {"providers": ["copilot"], "debounce_ms": 0, "prefetch": False},
        "providers": {"copilot": {"github_url": fake.base_url, "github_api_url": fake.base_url}},
    }


async def sign_in(s: Session) -> dict[str, Any]:
    started = await s.command("reaper.signIn", {"provider": "copilot"})
    assert started["userCode"].startswith("ABCD-")
    assert started["verificationUri"].endswith("/login/device")
    assert started["interval"] == 0
    return await s.command("reaper.signInConfirm", {"provider": "copilot"})  # type: ignore[no-any-return]


def auth_file(home: Path) -> Path:
    return home / "data" / "reaper-lsp" / "auth.json"


async def test_sign_in_with_commands_then_ghost_text_from_copilot(
    start_session: Any, github_fake: FakeServer, home: Path
) -> None:
    github_fake.script.queue(Reply(text="name.upper()"))
    s: Session = await start_session(options(github_fake))
    uri = s.open("greet.py", PY)
    assert await s.inline(uri, 1, 11) == []  # not signed in: the offline engine has nothing
    assert await sign_in(s) == {"status": "OK", "provider": "copilot", "user": "octocat"}
    states = [(getattr(p, "provider", None), getattr(p, "state", None)) for _, p in s.notifications]
    assert ("copilot", "signedIn") in states
    s.type_text(uri, 1, 11, "")
    assert await s.inline(uri, 1, 11) == ["name.upper()"]
    sent = github_fake.script.requests[-1]
    assert sent.path == "/v1/engines/gpt-41-copilot/completions"
    assert sent.headers["authorization"].startswith("Bearer tid=")
    assert sent.headers["openai-intent"] == "copilot-ghost"
    assert sent.headers["copilot-integration-id"] == "vscode-chat"
    assert sent.headers["editor-version"] and sent.headers["x-request-id"]
    assert sent.body["prompt"] == "# Path: greet.py\ndef greet(name):\n    return "
    assert sent.body["suffix"] == "\n"
    assert sent.body["stream"] is True
    assert sent.body["extra"]["language"] == "python"
    mode = stat.S_IMODE(os.stat(auth_file(home)).st_mode)
    assert mode == 0o600
    status = await s.command("reaper.status")
    assert status["signIn"]["github"] == {"signedIn": True, "source": "reaper-lsp"}
    assert "ghu_" not in json.dumps(status) and "tid=" not in json.dumps(status)


async def test_expired_token_is_reminted_without_the_user(
    start_session: Any, github_fake: FakeServer
) -> None:
    github_fake.script.queue(Reply(text="one"), Reply(text="two"))
    s: Session = await start_session(options(github_fake))
    await sign_in(s)
    uri = s.open("a.py", "x = \n")
    assert await s.inline(uri, 0, 4) == ["one"]
    minted = github_fake.app.state.mints
    github_fake.app.state.expire_all()  # the proxy now answers 401 to the token we hold
    s.type_text(uri, 0, 4, "1")
    s.type_text(uri, 0, 5, "\n")
    assert await s.inline(uri, 1, 0, invoked=True) == ["two"]
    assert github_fake.app.state.mints == minted + 1
    statuses = [r.path for r in github_fake.script.requests]
    assert statuses.count("/copilot_internal/v2/token") == minted + 1


async def test_short_lived_token_is_refreshed_in_the_background(
    start_session: Any, github_fake: FakeServer
) -> None:
    state = github_fake.app.state
    state.lifetime, state.refresh_in = 63, 1  # refresh due almost at once
    s: Session = await start_session(options(github_fake))
    await sign_in(s)
    for _ in range(50):
        if state.mints >= 3:
            break
        await asyncio.sleep(0.1)
    assert state.mints >= 2


async def test_sign_out_forgets_the_credentials(
    start_session: Any, github_fake: FakeServer, home: Path
) -> None:
    s: Session = await start_session(options(github_fake))
    await sign_in(s)
    assert "github" in json.loads(auth_file(home).read_text())
    assert await s.command("reaper.signOut", {"provider": "copilot"}) == {
        "status": "OK",
        "provider": "copilot",
    }
    assert json.loads(auth_file(home).read_text()) == {}
    status = await s.command("reaper.status")
    assert status["signIn"]["github"]["signedIn"] is False
    assert status["providers"]["copilot"]["configured"] is False


async def test_a_second_server_sees_the_sign_in(
    start_session: Any, github_fake: FakeServer
) -> None:
    github_fake.script.default = Reply(text="shared")
    first: Session = await start_session(options(github_fake))
    await sign_in(first)
    second: Session = await start_session(options(github_fake))
    uri = second.open("b.py", "y = \n")
    assert await second.inline(uri, 0, 4) == ["shared"]


async def test_copilot_vim_sign_in_is_reused(
    start_session: Any, github_fake: FakeServer, home: Path
) -> None:
    github_fake.script.queue(Reply(text="reused"))
    token = "ghu_fromcopilotvim000000000000"
    github_fake.app.state.github_tokens.add(token)
    folder = home / "config" / "github-copilot"
    folder.mkdir(parents=True)
    host = github_fake.base_url.split("//")[1].split(":")[0]
    (folder / "apps.json").write_text(
        json.dumps({f"{host}:Iv1.b507a08c87ecfe98": {"user": "vimmer", "oauth_token": token}})
    )
    s: Session = await start_session(options(github_fake))
    uri = s.open("c.py", "z = \n")
    assert await s.inline(uri, 0, 4) == ["reused"]
    status = await s.command("reaper.status")
    assert status["signIn"]["github"]["source"].startswith("copilot.vim")


async def test_quota_exhausted_is_told_once_and_falls_through(
    start_session: Any, github_fake: FakeServer
) -> None:
    github_fake.script.queue(Reply(status=402, body={"message": "quota_exceeded"}))
    s: Session = await start_session(options(github_fake))
    await sign_in(s)
    uri = s.open("d.py", "total = compute_total(items)\nprint(total)\ntotal = comp\n")
    assert await s.inline(uri, 2, 12) == ["ute_total(items)"]  # the offline engine answers
    s.type_text(uri, 2, 12, "u")
    assert await s.inline(uri, 2, 13) == ["te_total(items)"]
    proxy_calls = [r for r in github_fake.script.requests if "/engines/" in r.path]
    assert len(proxy_calls) == 1  # Copilot rests after a 402
    await asyncio.sleep(0.1)
    quota = [m for m in s.client.messages if "quota" in m.message]
    assert len(quota) == 1 and quota[0].type == lsp.MessageType.Warning


async def test_no_token_in_the_log(
    start_session: Any, github_fake: FakeServer, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    github_fake.script.queue(Reply(status=500), Reply(text="ok"))
    s: Session = await start_session(
        options(github_fake), args=["--log-level", "DEBUG", "--log-file", str(log)]
    )
    await sign_in(s)
    uri = s.open("e.py", "v = \n")
    await s.inline(uri, 0, 4)
    await s.command("reaper.status")
    text = log.read_text()
    assert "copilot" in text.lower()
    tokens = [
        t for t in github_fake.app.state.github_tokens | set(github_fake.app.state.copilot_tokens)
    ]
    assert tokens and not any(t in text for t in tokens)


def test_cli_login_copilot_then_complete(github_fake: FakeServer, home: Path) -> None:
    github_fake.script.queue(Reply(text='path, "a") as handle:'))
    config = home / "config" / "reaper-lsp"
    config.mkdir(parents=True)
    (config / "reaper.toml").write_text(
        f'[completion]\nproviders = ["copilot"]\n\n[providers.copilot]\n'
        f'github_url = "{github_fake.base_url}"\ngithub_api_url = "{github_fake.base_url}"\n'
    )
    exe = str(Path(sys.executable).parent / "reaper-lsp")
    env = isolated_env(home)
    login = subprocess.run(
        [exe, "login", "copilot", "--no-browser"], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    assert "ABCD-" in login.stdout and "/login/device" in login.stdout
    assert "octocat" in login.stdout
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [exe, "complete", "examples/demo.py", "--line", "19", "--col", "15"],
        env=env, cwd=root, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout == 'path, "a") as handle:\n', done.stderr
    logout = subprocess.run([exe, "logout", "copilot"], env=env, capture_output=True, text=True)
    assert logout.returncode == 0
    assert json.loads(auth_file(home).read_text()) == {}


async def test_revoked_sign_in_is_reported_once_and_completion_goes_on(
    start_session: Any, github_fake: FakeServer
) -> None:
    github_fake.script.default = Reply(text="1")
    s: Session = await start_session(options(github_fake))
    await sign_in(s)
    uri = s.open("r.py", "a = \n")
    assert await s.inline(uri, 0, 4, invoked=True) == ["1"]
    github_fake.app.state.revoked = True  # the user revoked the app on github.com
    github_fake.app.state.expire_all()
    s.type_text(uri, 0, 4, "2\n")
    await s.inline(uri, 1, 0, invoked=True)  # falls through to the offline engine
    await asyncio.sleep(0.1)
    told = [m.message for m in s.client.messages if "sign in again" in m.message]
    assert len(told) == 1
    states = [(getattr(p, "provider", None), getattr(p, "state", None)) for _, p in s.notifications]
    assert ("copilot", "signedOut") in states
    status = await s.command("reaper.status")
    assert status["signIn"]["github"]["signedIn"] is False


async def test_corrupt_token_file_is_reported_and_other_providers_still_answer(
    start_session: Any, github_fake: FakeServer, openai_fake: FakeServer, home: Path
) -> None:
    auth_file(home).parent.mkdir(parents=True)
    auth_file(home).write_text("{ half a file")
    openai_fake.script.queue(Reply(text="fine"))
    opts = options(github_fake)
    opts["completion"]["providers"] = ["copilot", "openai"]
    opts["providers"]["openai"] = {"base_url": openai_fake.base_url + "/v1"}
    s: Session = await start_session(opts, {"OPENAI_API_KEY": "sk-test"})
    uri = s.open("a.py", "x = \n")
    assert await s.inline(uri, 0, 4, invoked=True) == ["fine"]
    status = await s.command("reaper.status")
    assert "auth.json" in status["providers"]["copilot"]["reason"]
    assert auth_file(home).read_text() == "{ half a file"  # never overwritten
    with pytest.raises(Exception, match=r"auth\.json"):
        await sign_in(s)


async def test_chat_through_copilot_sends_the_integration_header(
    start_session: Any, github_fake: FakeServer
) -> None:
    github_fake.script.queue(Reply(text="Use enumerate()."))
    opts = options(github_fake)
    opts["chat"] = {"providers": ["copilot"]}
    s: Session = await start_session(opts)
    await sign_in(s)
    result = await s.command("reaper.chat", {"prompt": "How do I loop with an index?"})
    assert result == {
        "conversationId": "default",
        "provider": "copilot",
        "text": "Use enumerate().",
    }
    sent = github_fake.script.requests[-1]
    assert sent.path == "/chat/completions"
    assert sent.headers["copilot-integration-id"] == "vscode-chat"
    assert sent.headers["openai-intent"] == "conversation-panel"
