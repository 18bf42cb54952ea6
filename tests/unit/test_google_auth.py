"""Google sign-in pieces: PKCE, refresh timing, revocation, gcloud ADC reuse."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from reaper_lsp.auth.google import GoogleAuth, GoogleNotConfigured, GoogleSignInRequired
from reaper_lsp.auth.loopback import (
    LoopbackReceiver,
    OAuthDenied,
    OAuthStateMismatch,
    make_pkce,
    make_state,
)
from reaper_lsp.auth.store import TokenStore
from reaper_lsp.config import GoogleAuthSettings
from tests.fakes import google as fake_google
from tests.fakes.runner import FakeServer


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer(fake_google.create_app()) as server:
        yield server


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def test_pkce_challenge_is_s256_of_the_verifier() -> None:
    verifier, challenge = make_pkce()
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def settings(fake: FakeServer) -> GoogleAuthSettings:
    st = fake.app.state
    return GoogleAuthSettings(
        client_id=st.client_id,
        client_secret=st.client_secret,
        token_url=fake.base_url + "/token",
        auth_url=fake.base_url + "/authorize",
    )


async def signed_in(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path, clock: Clock
) -> GoogleAuth:
    auth = GoogleAuth(settings(fake), TokenStore(tmp_path / "auth.json", use_keyring=False),
                      lambda: client, env={}, clock=clock)  # fmt: skip
    url = await auth.start_sign_in()
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        await browser.get(url)
    await auth.confirm_sign_in(timeout=5)
    return auth


async def test_access_token_is_refreshed_just_before_expiry(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    clock = Clock()
    auth = await signed_in(fake, client, tmp_path, clock)
    first = await auth.access_token()
    clock.now += 3599 - 61
    assert await auth.access_token() == first
    clock.now += 2
    assert await auth.access_token() != first
    assert fake.app.state.refreshes == 1


async def test_revoked_refresh_token_clears_the_sign_in(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    clock = Clock()
    auth = await signed_in(fake, client, tmp_path, clock)
    fake.app.state.revoke_all()
    auth.invalidate()
    with pytest.raises(GoogleSignInRequired, match="login google"):
        await auth.access_token()
    assert not auth.signed_in()


async def test_gcloud_application_default_credentials_are_reused(
    fake: FakeServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    st = fake.app.state
    st.refresh_tokens.add("1//from-gcloud")
    adc = tmp_path / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir()
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": st.client_id,
                               "client_secret": st.client_secret,
                               "refresh_token": "1//from-gcloud"}))  # fmt: skip
    auth = GoogleAuth(
        GoogleAuthSettings(token_url=fake.base_url + "/token"),
        TokenStore(tmp_path / "auth.json", use_keyring=False),
        lambda: client,
        env={"CLOUDSDK_CONFIG": str(adc.parent)},
    )
    assert auth.signed_in() and (auth.token_source() or "").startswith("gcloud ADC")
    assert (await auth.access_token()).startswith("ya29.")
    await auth.sign_out()
    assert adc.exists()  # gcloud's file is never touched


async def test_missing_client_id_explains_what_to_do(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    auth = GoogleAuth(GoogleAuthSettings(), TokenStore(tmp_path / "a.json", use_keyring=False),
                      lambda: client, env={})  # fmt: skip
    with pytest.raises(GoogleNotConfigured, match=r"\[auth.google\] client_id"):
        await auth.start_sign_in()
    assert not auth.signed_in()


# -- the loopback page ---------------------------------------------------------------------------


async def test_the_loopback_page_escapes_what_it_reflects() -> None:
    state = make_state()
    receiver = LoopbackReceiver(state)
    await receiver.start()
    hostile = "<script>alert(document.cookie)</script>\x1b]52;c;aGk=\x07&\"'" + "x" * 5000
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.get(receiver.redirect_uri, params={"state": state, "error": hostile})
    with pytest.raises(OAuthDenied) as caught:
        await receiver.wait(5)
    page = answer.text
    assert answer.status_code == 200 and "Sign-in cancelled" in page
    assert "<script>" not in page and "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in page
    assert "&quot;&#x27;" in page and "\x1b" not in page and "52;c;" not in page
    assert len(page) < 1000  # the reflected error is capped
    assert "script-src" not in answer.headers["content-security-policy"]
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "\x1b" not in str(caught.value) and len(str(caught.value)) < 300


async def test_a_forged_state_is_refused_without_reflecting_anything() -> None:
    receiver = LoopbackReceiver(make_state())
    await receiver.start()
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.get(
            receiver.redirect_uri, params={"state": "<b>forged</b>", "code": "<i>c</i>"}
        )
    with pytest.raises(OAuthStateMismatch):
        await receiver.wait(5)
    assert answer.status_code == 400 and "forged" not in answer.text and "<i>" not in answer.text
