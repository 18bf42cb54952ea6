"""GitHub's device flow and the Copilot token, against the fake GitHub over real sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from reaper_lsp.auth.copilot_token import DEFAULT_API, DEFAULT_PROXY
from reaper_lsp.auth.copilot_vim import CLIENT_ID
from reaper_lsp.auth.device import (
    DeviceCode,
    DeviceFlowError,
    poll_floor,
    poll_for_token,
    request_device_code,
)
from reaper_lsp.auth.github import (
    CopilotUnavailable,
    GitHubAuth,
    SignInRequired,
)
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
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


class FakeTime:
    """An injected clock (real time plus what the injected sleep skipped) and a sleep that
    returns at once, recording what it was asked to wait."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return time.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds
        await asyncio.sleep(0)


def make(
    fake: FakeServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    t: FakeTime | None = None,
    **settings: str,
) -> GitHubAuth:
    t = t or FakeTime()
    copilot = CopilotSettings(github_url=fake.base_url, github_api_url=fake.base_url, **settings)
    store = TokenStore(tmp_path / "auth.json", use_keyring=False)
    return GitHubAuth(
        copilot, store, lambda: client, env={"HOME": str(tmp_path)}, sleep=t.sleep, clock=t.clock
    )


async def signed_in(fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path) -> GitHubAuth:
    fake.app.state.polls = []
    auth = make(fake, client, tmp_path)
    await auth.start_sign_in()
    await auth.confirm_sign_in()
    return auth


def requests_to(fake: FakeServer, path: str) -> list[Any]:
    return [r for r in fake.script.requests if r.path == path]


# -- device flow ---------------------------------------------------------------------------------


async def test_device_flow_honours_pending_and_slow_down(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    t = FakeTime()
    auth = make(fake, client, tmp_path, t)
    assert not auth.signed_in() and auth.token_source() is None
    code = await auth.start_sign_in()
    assert code.interval == 5 and code.user_code.startswith("ABCD-")
    assert code.verification_uri == f"{fake.base_url}/login/device"
    assert code.device_code not in repr(code)
    (asked,) = requests_to(fake, "/login/device/code")
    assert asked.method == "POST" and asked.headers["accept"] == "application/json"
    assert asked.headers["content-type"] == "application/x-www-form-urlencoded"
    assert asked.raw.decode() == f"client_id={CLIENT_ID}&scope=read%3Auser"

    assert await auth.confirm_sign_in() == "octocat"
    assert t.sleeps == [5, 5, 10]  # pending keeps 5 s; slow_down's new interval is used after
    polls = requests_to(fake, "/login/oauth/access_token")
    assert len(polls) == 3
    assert all(p.headers["accept"] == "application/json" for p in polls)
    body = polls[0].raw.decode()
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code" in body
    assert f"client_id={CLIENT_ID}" in body
    assert auth.signed_in() and auth.token_source() == "reaper-lsp"
    assert await auth.user() == "octocat"
    stored = auth._store.get("github")
    assert stored is not None and stored["user"] == "octocat"
    assert stored["host"] == "127.0.0.1" and stored["token"].startswith("ghu_")
    (who,) = requests_to(fake, "/user")
    assert who.headers["authorization"] == f"token {stored['token']}"


async def test_slow_down_without_an_interval_adds_five_seconds(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    state = fake.app.state
    state.polls, state.slow_down_interval = ["slow_down", "authorization_pending"], None
    t = FakeTime()
    auth = make(fake, client, tmp_path, t)
    await auth.start_sign_in()
    await auth.confirm_sign_in()
    assert t.sleeps == [5, 10, 10]


@pytest.mark.parametrize("final", ["expired_token", "access_denied"])
async def test_device_flow_failures(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path, final: str
) -> None:
    fake.app.state.polls, fake.app.state.final = ["authorization_pending"], final
    auth = make(fake, client, tmp_path)
    await auth.start_sign_in()
    with pytest.raises(DeviceFlowError) as caught:
        await auth.confirm_sign_in()
    assert caught.value.kind == final
    assert ("expired" if final == "expired_token" else "cancelled") in str(caught.value)
    assert not auth.signed_in()
    with pytest.raises(SignInRequired, match="no sign-in is in progress"):
        await auth.confirm_sign_in()  # the dead code is not polled again


async def test_code_lifetime_is_enforced_by_the_client(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    state = fake.app.state
    state.polls = ["authorization_pending"] * 100  # the user never enters the code
    state.device_expires_in, state.device_interval = 60, 25
    t = FakeTime()
    auth = make(fake, client, tmp_path, t)
    await auth.start_sign_in()
    with pytest.raises(DeviceFlowError) as caught:
        await auth.confirm_sign_in()
    assert caught.value.kind == "expired_token"
    assert t.sleeps == [25, 25, 25]
    assert len(requests_to(fake, "/login/oauth/access_token")) == 2  # none after expiry


async def test_confirm_without_start(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(SignInRequired):
        await make(fake, client, tmp_path).confirm_sign_in()


async def test_device_code_errors(fake: FakeServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(DeviceFlowError) as caught:
        await request_device_code(
            client, f"{fake.base_url}/login/device/code", client_id="nope", scope=""
        )
    assert caught.value.kind == "incorrect_client_credentials"
    with pytest.raises(DeviceFlowError) as caught:  # 404: no device flow here
        await request_device_code(client, f"{fake.base_url}/nowhere", client_id=CLIENT_ID, scope="")
    assert caught.value.kind == "unsupported"


async def test_poll_gives_up_after_repeated_network_failures(
    client: httpx.AsyncClient,
) -> None:
    t = FakeTime()
    code = DeviceCode("dc", "UC", "https://example.invalid", expires_in=900, interval=1)
    with FakeServer(fake_github.create_app()) as server:
        closed = server.base_url
    with pytest.raises(DeviceFlowError) as caught:
        await poll_for_token(
            client,
            f"{closed}/login/oauth/access_token",
            client_id=CLIENT_ID,
            code=code,
            sleep=t.sleep,
            clock=t.clock,
        )
    assert caught.value.kind == "network"
    assert len(t.sleeps) == 3  # three tries before giving up


# -- copilot.vim's sign-in -----------------------------------------------------------------------


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


async def test_copilot_vim_apps_json_is_reused_and_never_written(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    token = "ghu_fromcopilotvim0000000000"
    fake.app.state.github_tokens.add(token)
    apps = tmp_path / "xdg" / "github-copilot" / "apps.json"
    write_json(
        apps,
        {
            "127.0.0.1:Ov23liOtherApp": {"user": "other", "oauth_token": "gho_otherapp0000"},
            f"127.0.0.1:{CLIENT_ID}": {"user": "vimmer", "oauth_token": token},
            f"github.com:{CLIENT_ID}": {"user": "public", "oauth_token": "ghu_publichost00"},
        },
    )
    before = (apps.read_bytes(), apps.stat().st_mtime_ns)
    settings = CopilotSettings(github_url=fake.base_url, github_api_url=fake.base_url)
    store = TokenStore(tmp_path / "auth.json", use_keyring=False)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    auth = GitHubAuth(settings, store, lambda: client, env=env)
    assert auth.github_token() == token
    assert auth.token_source() == f"copilot.vim ({apps})"
    assert await auth.user() == "vimmer"
    minted = await auth.copilot_token()
    assert minted.proxy_url == fake.base_url
    assert store.get("github") is None  # their sign-in is not copied into ours
    await auth.sign_out()
    assert auth.token_source() == f"copilot.vim ({apps})"  # still theirs, still reused
    assert (apps.read_bytes(), apps.stat().st_mtime_ns) == before


async def test_our_sign_in_wins_over_copilot_vims(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    write_json(
        tmp_path / ".config" / "github-copilot" / "hosts.json",
        {"127.0.0.1": {"user": "vimmer", "oauth_token": "ghu_vimtoken00000"}},
    )
    auth = await signed_in(fake, client, tmp_path)
    assert auth.token_source() == "reaper-lsp"
    assert auth.github_token() != "ghu_vimtoken00000"
    await auth.sign_out()
    assert auth.github_token() == "ghu_vimtoken00000"


async def test_copilot_vim_hosts_json_for_an_enterprise_host(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    write_json(
        tmp_path / ".config" / "github-copilot" / "hosts.json",
        {"github.example.com": {"user": "me", "oauth_token": "gho_enterprise"}},
    )
    settings = CopilotSettings(
        github_url="https://GitHub.example.com/", github_api_url="https://api.github.example.com"
    )
    store = TokenStore(tmp_path / "auth.json", use_keyring=False)
    ghe = GitHubAuth(settings, store, lambda: client, env={"HOME": str(tmp_path)})
    assert ghe.host == "github.example.com"
    assert ghe.github_token() == "gho_enterprise"
    assert await ghe.user() == "me"
    public = GitHubAuth(CopilotSettings(), store, lambda: client, env={"HOME": str(tmp_path)})
    assert public.github_token() is None  # another host's sign-in is not used
    # Nor is our own sign-in for another host.
    store.put("github", {"token": "ghu_public00000", "user": "x", "host": "github.com"})
    assert ghe.github_token() == "gho_enterprise" and ghe.token_source() is not None
    assert public.github_token() == "ghu_public00000"


async def test_enterprise_urls_are_used_for_everything(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # The fake serves both "hosts" on one origin; what matters is that no request goes to
    # github.com: the client would fail to connect (no internet in tests) if it did.
    auth = await signed_in(fake, client, tmp_path)
    await auth.copilot_token()
    paths = {r.path for r in fake.script.requests}
    assert paths == {
        "/login/device/code",
        "/login/oauth/access_token",
        "/user",
        "/copilot_internal/v2/token",
    }


# -- the Copilot token ---------------------------------------------------------------------------


async def test_token_exchange_sends_editor_headers_and_reads_endpoints(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    state = fake.app.state
    state.proxy_url, state.api_url = "https://proxy.example.test", "https://api.example.test"
    state.polls = []
    t = FakeTime()
    auth = make(
        fake,
        client,
        tmp_path,
        t,
        editor_version="Neovim/0.10.0",
        editor_plugin_version="reaper-lsp/9.9",
        user_agent="reaper-test/1.0",
    )
    await auth.start_sign_in()
    await auth.confirm_sign_in()
    token = await auth.copilot_token()
    assert token.proxy_url == "https://proxy.example.test"
    assert token.api_url == "https://api.example.test"
    assert token.token.startswith("tid=")
    assert token.expires_at == pytest.approx(time.time() + 1800, abs=5)  # GitHub's clock
    # Refresh times are on the auth's clock, which the device flow's polls moved forward.
    assert token.refresh_at == pytest.approx(t.clock() + 1500 - 60, abs=5)
    (sent,) = requests_to(fake, "/copilot_internal/v2/token")
    assert sent.method == "GET"
    assert sent.headers["authorization"] == f"token {auth.github_token()}"
    assert sent.headers["editor-version"] == "Neovim/0.10.0"
    assert sent.headers["editor-plugin-version"] == "reaper-lsp/9.9"
    assert sent.headers["user-agent"] == "reaper-test/1.0"


async def test_default_endpoints_when_the_answer_has_none(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fake.app.state.omit_endpoints = True
    auth = await signed_in(fake, client, tmp_path)
    token = await auth.copilot_token()
    assert (token.proxy_url, token.api_url) == (DEFAULT_PROXY, DEFAULT_API)


async def test_copilot_token_is_cached_shared_and_reminted(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    auth = await signed_in(fake, client, tmp_path)
    token = await auth.copilot_token()
    assert token.proxy_url == fake.base_url and token.token not in repr(token)
    assert await auth.copilot_token() is token
    cached = auth._store.get("copilot")
    assert cached is not None and cached["token"] == token.token
    assert cached["host"] == "127.0.0.1"
    assert github_token_not_in(cached, auth)
    other = make(fake, client, tmp_path)  # a second server reads the store
    assert (await other.copilot_token()).token == token.token
    assert fake.app.state.mints == 1
    auth.invalidate()
    fresh = await auth.copilot_token()
    assert fresh.token != token.token
    assert fake.app.state.mints == 2
    assert (await other.copilot_token()).token == token.token  # still valid for the other one
    third = make(fake, client, tmp_path)
    assert (await third.copilot_token()).token == fresh.token  # the store has the new one
    assert (await auth.copilot_token(force=True)).token != fresh.token
    assert fake.app.state.mints == 3


def github_token_not_in(entry: dict[str, Any], auth: GitHubAuth) -> bool:
    github = auth.github_token()
    return github is not None and github not in json.dumps(entry)


async def test_cached_token_of_another_account_is_not_reused(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    auth = await signed_in(fake, client, tmp_path)
    first = await auth.copilot_token()
    entry = auth._store.get("github")
    assert entry is not None
    # Another process signs in as someone else, writing only "github".
    fake.app.state.github_tokens.add("ghu_someoneelse000")
    auth._store.put("github", {**entry, "token": "ghu_someoneelse000"})
    other = make(fake, client, tmp_path)
    assert (await other.copilot_token()).token != first.token


async def test_expired_tokens_are_not_handed_out(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    t = FakeTime()
    fake.app.state.polls = []
    auth = make(fake, client, tmp_path, t)
    await auth.start_sign_in()
    await auth.confirm_sign_in()
    first = await auth.copilot_token()
    t.offset += 1800 - 30  # within a minute of expiry
    second = await auth.copilot_token()
    assert second.token != first.token and fake.app.state.mints == 2


async def test_clock_skew_does_not_make_every_token_look_expired(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    t = FakeTime(offset=3 * 3600)  # this machine's clock is three hours fast
    fake.app.state.polls = []
    auth = make(fake, client, tmp_path, t)
    await auth.start_sign_in()
    await auth.confirm_sign_in()
    token = await auth.copilot_token()
    assert token.expires_at == pytest.approx(t.clock() + 1800, abs=5)
    assert await auth.copilot_token() is token
    assert fake.app.state.mints == 1


async def test_background_refresh_ahead_of_refresh_at(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    state = fake.app.state
    state.lifetime, state.refresh_in = 90, 20
    auth = await signed_in(fake, client, tmp_path)
    blocked = asyncio.Event()
    t = FakeTime()

    async def sleep(seconds: float) -> None:
        t.sleeps.append(seconds)
        if len(t.sleeps) > 1:  # let one refresh happen, then hold still
            blocked.set()
            await asyncio.Event().wait()
        t.offset += seconds
        await asyncio.sleep(0)

    auth._sleep, auth._clock = sleep, t.clock
    first = await auth.copilot_token()
    auth.start()
    auth.start()  # idempotent
    await asyncio.wait_for(blocked.wait(), 5)
    assert state.mints == 2
    assert t.sleeps[0] == pytest.approx(10, abs=2)  # refresh_in 20 s, re-minted 10 s early
    second = await auth.copilot_token()
    assert second.token != first.token and state.mints == 2
    cached = auth._store.get("copilot")
    assert cached is not None and cached["token"] == second.token
    task = auth._refresher
    await auth.aclose()
    assert task is not None and task.cancelled()
    await auth.aclose()  # twice is fine


async def test_background_refresh_stops_when_signed_out_and_retries_network_errors(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with FakeServer(fake_github.create_app()) as server:
        closed = server.base_url
    t = FakeTime()
    settings = CopilotSettings(github_url=closed, github_api_url=closed)
    store = TokenStore(tmp_path / "auth.json", use_keyring=False)
    store.put("github", {"token": "ghu_somewhere0000", "user": "u", "host": "127.0.0.1"})
    auth = GitHubAuth(
        settings, store, lambda: client, env={"HOME": str(tmp_path)}, sleep=t.sleep, clock=t.clock
    )
    with pytest.raises(CopilotUnavailable) as caught:
        await auth.copilot_token()
    assert caught.value.retryable
    auth.start()
    for _ in range(200):
        if len(t.sleeps) >= 3:
            break
        await asyncio.sleep(0.01)
    assert t.sleeps[:3] == [5, 10, 20]  # backoff while GitHub cannot be reached
    store.delete("github")
    task = auth._refresher
    assert task is not None
    await asyncio.wait_for(task, 5)  # signed out: the refresh ends by itself
    await auth.aclose()


async def test_revoked_sign_in_is_forgotten(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    auth = await signed_in(fake, client, tmp_path)
    github = auth.github_token()
    assert github is not None
    await auth.copilot_token()
    fake.app.state.revoked = True
    auth.invalidate()
    with pytest.raises(SignInRequired, match="sign in again") as caught:
        await auth.copilot_token()
    assert github not in str(caught.value)
    assert auth._store.get("github") is None and auth._store.get("copilot") is None
    assert not auth.signed_in()
    with pytest.raises(SignInRequired, match="reaper-lsp login copilot"):
        await auth.copilot_token()


async def test_revoked_copilot_vim_sign_in_is_reported_not_deleted(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    hosts = tmp_path / ".config" / "github-copilot" / "hosts.json"
    write_json(hosts, {"127.0.0.1": {"user": "vimmer", "oauth_token": "ghu_revokedvim0000"}})
    auth = make(fake, client, tmp_path)
    with pytest.raises(SignInRequired, match=r"copilot\.vim") as caught:
        await auth.copilot_token()
    assert "ghu_revokedvim" not in str(caught.value)
    assert hosts.exists()


async def test_no_subscription(fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path) -> None:
    fake.app.state.no_subscription = True
    auth = await signed_in(fake, client, tmp_path)
    with pytest.raises(CopilotUnavailable, match="no Copilot access") as caught:
        await auth.copilot_token()
    assert not caught.value.retryable
    assert auth.signed_in()  # the sign-in itself is fine


async def test_not_signed_in(fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path) -> None:
    auth = make(fake, client, tmp_path)
    with pytest.raises(SignInRequired, match="login copilot"):
        await auth.copilot_token()
    assert requests_to(fake, "/copilot_internal/v2/token") == []


async def test_corrupt_store_falls_back_to_copilot_vim_and_still_mints(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "auth.json").write_text("{oops")
    write_json(
        tmp_path / ".config" / "github-copilot" / "hosts.json",
        {"127.0.0.1": {"user": "vimmer", "oauth_token": "ghu_vimtoken11111"}},
    )
    fake.app.state.github_tokens.add("ghu_vimtoken11111")
    auth = make(fake, client, tmp_path)
    assert auth.github_token() == "ghu_vimtoken11111"
    assert auth.store_problem is not None and "auth.json" in auth.store_problem
    assert (await auth.copilot_token()).proxy_url == fake.base_url
    assert (tmp_path / "auth.json").read_text() == "{oops"


async def test_no_token_in_reprs_or_errors(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    auth = await signed_in(fake, client, tmp_path)
    token = await auth.copilot_token()
    github = auth.github_token()
    assert github is not None
    shown = " ".join([repr(auth), repr(token), str(token), repr(auth._store)])
    assert github not in shown and token.token not in shown
    fake.app.state.no_subscription = True
    with pytest.raises(CopilotUnavailable) as caught:
        await auth.copilot_token(force=True)
    assert github not in str(caught.value) and github not in repr(caught.value)


# -- the poll interval's floor -------------------------------------------------------------------


@pytest.mark.parametrize("min_interval", [None, 0.0, 0.2])
async def test_a_zero_interval_still_waits_a_second_on_a_remote_server(
    min_interval: float | None,
) -> None:
    answers = iter(
        [
            {"error": "authorization_pending"},
            {"error": "slow_down", "interval": 0},
            {"error": "authorization_pending"},
            {"access_token": "gho_floor0123456789", "token_type": "bearer"},
        ]
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=next(answers)))
    t = FakeTime()
    code = DeviceCode("dc", "UC", "https://github.com/login/device", expires_in=900, interval=0)
    async with httpx.AsyncClient(transport=transport) as remote:
        answer = await poll_for_token(
            remote,
            "https://github.com/login/oauth/access_token",
            client_id=CLIENT_ID,
            code=code,
            sleep=t.sleep,
            clock=t.clock,
            min_interval=min_interval,
        )
    assert answer["access_token"] == "gho_floor0123456789"
    assert t.sleeps == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("url", "requested", "floor"),
    [
        ("http://127.0.0.1:8080/login/oauth/access_token", None, 0.0),
        ("http://localhost/x", None, 0.0),
        ("http://[::1]:9/x", 0.25, 0.25),
        ("http://127.3.4.5/x", None, 0.0),
        ("https://github.com/login/oauth/access_token", None, 1.0),
        ("https://github.com/x", 0.0, 1.0),
        ("https://github.com/x", 3.0, 3.0),
        ("https://127.0.0.1.example.com/x", None, 1.0),
        ("https://ghe.corp.example/x", None, 1.0),
    ],
)
def test_only_a_loopback_server_may_be_polled_faster_than_once_a_second(
    url: str, requested: float | None, floor: float
) -> None:
    assert poll_floor(url, requested) == floor


def device_server(answer: dict[str, object]) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    )


async def test_what_a_device_server_says_reaches_the_user_as_plain_text() -> None:
    answer = {
        "device_code": "dc",
        "user_code": "ABCD-\x1b]52;c;cHduZWQ=\x07EFGH\u202e",
        "verification_uri": "https://github.com/login/device\x1b[2J",
        "interval": 5,
        "expires_in": 900,
    }
    async with device_server(answer) as remote:
        code = await request_device_code(
            remote, "https://github.com/login/device/code", client_id=CLIENT_ID, scope=""
        )
    assert code.user_code == "ABCD-EFGH"
    assert code.verification_uri == "https://github.com/login/device"
    denied = {"error": "access_denied_x", "error_description": "no\x1b[31m \x9b2J" + "x" * 9000}
    async with device_server(denied) as remote:
        with pytest.raises(DeviceFlowError) as caught:
            await request_device_code(
                remote, "https://github.com/login/device/code", client_id=CLIENT_ID, scope=""
            )
    assert str(caught.value).startswith("no x") and len(str(caught.value)) <= 2000
    assert "\x1b" not in str(caught.value) and "\x9b" not in str(caught.value)


@pytest.mark.parametrize("uri", ["javascript:alert(1)", "file:///etc/passwd", "data:,x", "//x"])
async def test_a_device_code_must_send_the_user_to_a_web_address(uri: str) -> None:
    answer = {"device_code": "dc", "user_code": "ABCD-EFGH", "verification_uri": uri}
    async with device_server(answer) as remote:
        with pytest.raises(DeviceFlowError) as caught:
            await request_device_code(
                remote, "https://github.com/login/device/code", client_id=CLIENT_ID, scope=""
            )
    assert caught.value.kind == "protocol"
