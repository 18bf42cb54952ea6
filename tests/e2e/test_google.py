"""Claude on Vertex AI with a Google sign-in, through the server and the CLI: the browser is
played by an HTTP client that follows the fake Google's redirect to our loopback listener."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.conftest import Session, isolated_env
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import google as fake_google
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply


@pytest.fixture
def google_fake() -> Iterator[FakeServer]:
    with FakeServer(fake_google.create_app()) as server:
        yield server


@pytest.fixture
def vertex_fake(google_fake: FakeServer) -> Iterator[FakeServer]:
    app = fake_anthropic.create_app(vertex=True)
    app.accepted_tokens = google_fake.app.state.access_tokens  # tokens Google issued
    with FakeServer(app) as server:
        yield server


def options(google: FakeServer, vertex: FakeServer) -> dict[str, Any]:
    state = google.app.state
    return {
        "completion": {"providers": ["claude"], "debounce_ms": 0, "prefetch": False},
        "providers": {
            "claude": {
                "backend": "vertex",
                "vertex_project": "my-project",
                "vertex_region": "us-east5",
                "vertex_base_url": vertex.base_url + "/v1",
                "model": "claude-haiku-4-5@20251001",
            }
        },
        "auth": {
            "google": {
                "client_id": state.client_id,
                "client_secret": state.client_secret,
                "auth_url": google.base_url + "/authorize",
                "token_url": google.base_url + "/token",
            }
        },
    }


async def be_the_browser(url: str) -> httpx.Response:
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        return await browser.get(url)


async def test_google_sign_in_then_claude_on_vertex(
    start_session: Any, google_fake: FakeServer, vertex_fake: FakeServer, home: Path
) -> None:
    vertex_fake.script.queue(Reply(text="name.title()"))
    s: Session = await start_session(options(google_fake, vertex_fake))
    started = await s.command("reaper.signIn", {"provider": "google"})
    url = started["authorizeUrl"]
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    assert query["scope"] == ["openid email https://www.googleapis.com/auth/cloud-platform"]
    page = await be_the_browser(url)
    assert page.status_code == 200 and "Signed in" in page.text
    confirmed = await s.command("reaper.signInConfirm", {"provider": "google"})
    assert confirmed["status"] == "OK"
    assert confirmed["user"] == "ada@example.com"  # the account, not "signed in to Google"
    assert google_fake.app.state.grants == 1
    uri = s.open("greet.py", "def greet(name):\n    return \n")
    assert await s.inline(uri, 1, 11) == ["name.title()"]
    sent = vertex_fake.script.requests[-1]
    assert sent.path == (
        "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/"
        "claude-haiku-4-5@20251001:streamRawPredict"
    )
    assert sent.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent.body
    assert sent.headers["authorization"].startswith("Bearer ya29.")
    stored = json.loads((home / "data" / "reaper-lsp" / "auth.json").read_text())
    assert stored["google"]["refresh_token"].startswith("1//")
    status = await s.command("reaper.status")
    assert status["signIn"]["google"]["signedIn"] is True
    assert "ya29." not in json.dumps(status) and "1//" not in json.dumps(status)


async def test_revoked_access_token_is_refreshed_once(
    start_session: Any, google_fake: FakeServer, vertex_fake: FakeServer
) -> None:
    vertex_fake.script.queue(Reply(text="one"), Reply(text="two"))
    s: Session = await start_session(options(google_fake, vertex_fake))
    started = await s.command("reaper.signIn", {"provider": "google"})
    await be_the_browser(started["authorizeUrl"])
    await s.command("reaper.signInConfirm", {"provider": "google"})
    uri = s.open("a.py", "x = \n")
    assert await s.inline(uri, 0, 4) == ["one"]
    google_fake.app.state.access_tokens.clear()  # Vertex now rejects the access token
    s.type_text(uri, 0, 4, "1\n")
    assert await s.inline(uri, 1, 0, invoked=True) == ["two"]
    assert google_fake.app.state.refreshes == 1


async def test_state_mismatch_on_the_redirect_is_rejected(
    start_session: Any, google_fake: FakeServer, vertex_fake: FakeServer, home: Path
) -> None:
    s: Session = await start_session(options(google_fake, vertex_fake))
    started = await s.command("reaper.signIn", {"provider": "google"})
    redirect = parse_qs(urlsplit(started["authorizeUrl"]).query)["redirect_uri"][0]
    async with httpx.AsyncClient() as attacker:
        forged = await attacker.get(redirect, params={"code": "4/forged", "state": "not-it"})
    assert forged.status_code == 400
    with pytest.raises(Exception, match="wrong state"):
        await s.command("reaper.signInConfirm", {"provider": "google"})
    assert google_fake.app.state.grants == 0
    auth = home / "data" / "reaper-lsp" / "auth.json"
    assert not auth.exists() or "google" not in json.loads(auth.read_text())
    with pytest.raises(httpx.ConnectError):  # the listener is gone after one answer
        async with httpx.AsyncClient() as late:
            await late.get(redirect, params={"code": "x", "state": "y"})


async def test_missing_oauth_client_says_how_to_create_one(start_session: Any) -> None:
    s: Session = await start_session({"completion": {"providers": ["claude"]}})
    with pytest.raises(Exception, match="Desktop app"):
        await s.command("reaper.signIn", {"provider": "google"})


def test_cli_login_google(google_fake: FakeServer, vertex_fake: FakeServer, home: Path) -> None:
    opts = options(google_fake, vertex_fake)
    config = home / "config" / "reaper-lsp"
    config.mkdir(parents=True)
    claude, google = opts["providers"]["claude"], opts["auth"]["google"]
    lines = ["[providers.claude]"] + [f"{k} = {json.dumps(v)}" for k, v in claude.items()]
    lines += ["", "[auth.google]"] + [f"{k} = {json.dumps(v)}" for k, v in google.items()]
    lines += ["", "[completion]", 'providers = ["claude"]']
    (config / "reaper.toml").write_text("\n".join(lines) + "\n")
    exe = str(Path(sys.executable).parent / "reaper-lsp")
    env = isolated_env(home)
    proc = subprocess.Popen(
        [exe, "login", "google", "--no-browser"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        if line.startswith("http"):
            url = line.strip()
            break
    assert url.startswith(google_fake.base_url + "/authorize?")
    page = httpx.get(url, follow_redirects=True)
    assert "Signed in" in page.text
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Claude on Vertex AI is ready" in out
    vertex_fake.script.queue(Reply(text='path, "a") as handle:'))
    done = subprocess.run(
        [exe, "complete", "examples/demo.py", "--line", "19", "--col", "15"],
        env=env, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.stdout == 'path, "a") as handle:\n', done.stderr
