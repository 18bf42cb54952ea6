"""GitHub's device flow and the Copilot token, against the fake GitHub over real sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from reaper_lsp.auth.device import DeviceFlowError
from reaper_lsp.auth.github import CopilotUnavailable, GitHubAuth, SignInRequired
from reaper_lsp.auth.store import TokenStore
from reaper_lsp.config import CopilotSettings
from tests.fakes import github as fake_github
from tests.fakes.runner import FakeServer


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer(fake_github.create_app()) as server:
        server.app.state.base_url = server.base_url
        yield server


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def make(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path, sleeps: list[float]
) -> GitHubAuth:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    settings = CopilotSettings(github_url=fake.base_url, github_api_url=fake.base_url)
    store = TokenStore(tmp_path / "auth.json", use_keyring=False)
    return GitHubAuth(settings, store, client, env={"HOME": str(tmp_path)}, sleep=sleep)


async def test_device_flow_honours_pending_and_slow_down(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    sleeps: list[float] = []
    auth = make(fake, client, tmp_path, sleeps)
    code = await auth.start_sign_in()
    assert code.interval == 5 and code.user_code.startswith("ABCD-")
    assert "device_code" not in repr(code) or code.device_code not in repr(code)
    assert await auth.confirm_sign_in() == "octocat"
    assert sleeps == [5, 5, 10]  # pending keeps 5 s; slow_down's new interval is used after
    sent = [r for r in fake.script.requests if r.path == "/login/oauth/access_token"]
    assert (
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code" in sent[0].raw.decode()
    )
    assert auth.signed_in() and auth.token_source() == "reaper-lsp"


@pytest.mark.parametrize("final", ["expired_token", "access_denied"])
async def test_device_flow_failures(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path, final: str
) -> None:
    fake.app.state.polls, fake.app.state.final = [], final
    auth = make(fake, client, tmp_path, [])
    await auth.start_sign_in()
    with pytest.raises(DeviceFlowError) as caught:
        await auth.confirm_sign_in()
    assert caught.value.kind == final
    assert not auth.signed_in()


async def test_copilot_token_is_cached_shared_and_reminted(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fake.app.state.polls = []
    auth = make(fake, client, tmp_path, [])
    await auth.start_sign_in()
    await auth.confirm_sign_in()
    token = await auth.copilot_token()
    assert token.proxy_url == fake.base_url and token.token not in repr(token)
    assert await auth.copilot_token() is token
    other = make(fake, client, tmp_path, [])  # a second server reads the store
    assert (await other.copilot_token()).token == token.token
    assert fake.app.state.mints == 1
    auth.invalidate()
    assert (await auth.copilot_token()).token != token.token
    assert fake.app.state.mints == 2


async def test_revoked_sign_in_is_forgotten(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fake.app.state.polls = []
    auth = make(fake, client, tmp_path, [])
    await auth.start_sign_in()
    await auth.confirm_sign_in()
    fake.app.state.revoked = True
    with pytest.raises(SignInRequired, match="sign in again"):
        await auth.copilot_token()
    assert not auth.signed_in()


async def test_no_subscription(fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path) -> None:
    fake.app.state.polls, fake.app.state.no_subscription = [], True
    auth = make(fake, client, tmp_path, [])
    await auth.start_sign_in()
    await auth.confirm_sign_in()
    with pytest.raises(CopilotUnavailable, match="no Copilot access"):
        await auth.copilot_token()


async def test_copilot_vim_hosts_json_for_an_enterprise_host(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    folder = tmp_path / ".config" / "github-copilot"
    folder.mkdir(parents=True)
    (folder / "hosts.json").write_text(
        json.dumps({"github.example.com": {"user": "me", "oauth_token": "gho_enterprise"}})
    )
    settings = CopilotSettings(
        github_url="https://github.example.com", github_api_url="https://api.github.example.com"
    )
    store = TokenStore(tmp_path / "auth.json", use_keyring=False)
    ghe = GitHubAuth(settings, store, client, env={"HOME": str(tmp_path)})
    assert ghe.github_token() == "gho_enterprise"
    assert await ghe.user() == "me"
    public = GitHubAuth(CopilotSettings(), store, client, env={"HOME": str(tmp_path)})
    assert public.github_token() is None  # another host's sign-in is not used
