"""GitHub sign-in for Copilot and the short-lived Copilot token minted from it.

The GitHub token comes from our own device-flow sign-in (token store), or from copilot.vim /
copilot.lua's `github-copilot/{apps,hosts}.json` so their users never sign in twice. The
Copilot token is cached in memory and in the store (a second server reuses it), and re-minted
ahead of `refresh_in` in the background, or at once after a 401/403.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from reaper_lsp import __version__
from reaper_lsp.auth.device import DeviceCode, poll_for_token, request_device_code
from reaper_lsp.auth.store import StoreCorrupted, TokenStore
from reaper_lsp.config import CopilotSettings
from reaper_lsp.logs import register_secret

log = logging.getLogger(__name__)

CLIENT_ID = "Iv1.b507a08c87ecfe98"
SCOPE = "read:user"
DEFAULT_PROXY = "https://copilot-proxy.githubusercontent.com"
DEFAULT_API = "https://api.githubcopilot.com"
REFRESH_MARGIN = 60.0
"""Seconds before `expires_at` after which a Copilot token is no longer handed out."""


class SignInRequired(Exception):
    """No GitHub token anywhere: the user has to sign in."""


class CopilotUnavailable(Exception):
    """GitHub refused to mint a Copilot token (revoked sign-in, no subscription)."""


@dataclass(frozen=True, slots=True)
class CopilotToken:
    token: str = field(repr=False)
    expires_at: float
    refresh_at: float
    proxy_url: str
    api_url: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "expires_at": self.expires_at,
            "refresh_at": self.refresh_at,
            "proxy_url": self.proxy_url,
            "api_url": self.api_url,
        }


class GitHubAuth:
    def __init__(
        self,
        settings: CopilotSettings,
        store: TokenStore,
        client: httpx.AsyncClient,
        *,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._store = store
        self._client = client
        self._env = dict(os.environ if env is None else env)
        self._sleep = sleep
        self._clock = clock
        self._pending: DeviceCode | None = None
        self._copilot: CopilotToken | None = None
        self._minting: asyncio.Lock | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.store_problem: str | None = None
        """Why the token store could not be read, when it could not."""

    # -- where the GitHub token comes from ------------------------------------------------------

    @property
    def host(self) -> str:
        return urlsplit(self._settings.github_url).hostname or "github.com"

    def _copilot_vim_files(self) -> list[Path]:
        base = self._env.get("XDG_CONFIG_HOME") or str(Path(self._env.get("HOME", "~")) / ".config")
        folder = Path(base).expanduser() / "github-copilot"
        return [folder / "apps.json", folder / "hosts.json"]

    def _from_copilot_vim(self) -> tuple[str, str, Path] | None:
        """(token, user, file) of copilot.vim's sign-in for our host; the files are only read."""
        for path in self._copilot_vim_files():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            for key, entry in data.items():
                if not isinstance(entry, dict) or key.split(":", 1)[0] != self.host:
                    continue
                token = entry.get("oauth_token")
                if isinstance(token, str) and token:
                    register_secret(token)
                    return token, str(entry.get("user", "")), path
        return None

    def _stored(self) -> dict[str, Any] | None:
        try:
            entry = self._store.get("github")
        except StoreCorrupted as exc:
            if self.store_problem is None:
                log.error("%s", exc)
            self.store_problem = str(exc)
            return None
        self.store_problem = None
        if entry and entry.get("host", self.host) == self.host and entry.get("token"):
            return entry
        return None

    def github_token(self) -> str | None:
        stored = self._stored()
        if stored is not None:
            return str(stored["token"])
        found = self._from_copilot_vim()
        return found[0] if found else None

    def signed_in(self) -> bool:
        return self.github_token() is not None

    def token_source(self) -> str | None:
        if self._stored() is not None:
            return "reaper-lsp"
        found = self._from_copilot_vim()
        return f"copilot.vim ({found[2]})" if found else None

    # -- device flow ----------------------------------------------------------------------------

    def _github(self, path: str) -> str:
        return self._settings.github_url.rstrip("/") + path

    def _api(self, path: str) -> str:
        return self._settings.github_api_url.rstrip("/") + path

    async def start_sign_in(self) -> DeviceCode:
        self._pending = await request_device_code(
            self._client, self._github("/login/device/code"), client_id=CLIENT_ID, scope=SCOPE
        )
        return self._pending

    async def confirm_sign_in(self) -> str:
        code = self._pending
        if code is None:
            raise SignInRequired("no sign-in is in progress; start one with reaper.signIn")
        answer = await poll_for_token(
            self._client,
            self._github("/login/oauth/access_token"),
            client_id=CLIENT_ID,
            code=code,
            sleep=self._sleep,
        )
        self._pending = None
        token = str(answer["access_token"])
        register_secret(token)
        user = await self._user_of(token) or ""
        self._store.put("github", {"token": token, "user": user, "host": self.host})
        self._store.delete("copilot")
        self._copilot = None
        return user

    async def _user_of(self, token: str) -> str | None:
        try:
            response = await self._client.get(
                self._api("/user"),
                headers={"authorization": f"token {token}", "accept": "application/json"},
            )
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        login = response.json().get("login")
        return str(login) if login else None

    async def user(self) -> str | None:
        stored = self._stored()
        if stored is not None and stored.get("user"):
            return str(stored["user"])
        found = self._from_copilot_vim()
        if found is not None and found[1]:
            return found[1]
        token = self.github_token()
        return await self._user_of(token) if token else None

    async def sign_out(self) -> None:
        """Forget our sign-in and the Copilot token. A copilot.vim sign-in on this machine is
        still reused afterwards (it is theirs to remove); `token_source` shows where it is."""
        self.invalidate()
        self._store.delete("github")
        self._store.delete("copilot")

    # -- Copilot token --------------------------------------------------------------------------

    def _editor_headers(self) -> dict[str, str]:
        s = self._settings
        return {
            "editor-version": s.editor_version or f"reaper-lsp/{__version__}",
            "editor-plugin-version": s.editor_plugin_version or f"reaper-lsp/{__version__}",
            "user-agent": s.user_agent or f"reaper-lsp/{__version__}",
        }

    def _usable(self, token: CopilotToken | None) -> bool:
        return token is not None and self._clock() < token.expires_at - REFRESH_MARGIN

    async def copilot_token(self, *, force: bool = False) -> CopilotToken:
        if not force and self._usable(self._copilot):
            assert self._copilot is not None
            return self._copilot
        if self._minting is None:
            self._minting = asyncio.Lock()
        async with self._minting:
            if not force and self._usable(self._copilot):
                assert self._copilot is not None
                return self._copilot
            if not force:
                cached = self._from_store()
                if self._usable(cached):
                    self._copilot = cached
                    assert cached is not None
                    return cached
            self._copilot = await self._mint()
            return self._copilot

    def _from_store(self) -> CopilotToken | None:
        try:
            entry = self._store.get("copilot")
        except StoreCorrupted:
            return None
        if not entry or entry.get("host", self.host) != self.host:
            return None
        try:
            return CopilotToken(
                token=str(entry["token"]),
                expires_at=float(entry["expires_at"]),
                refresh_at=float(entry["refresh_at"]),
                proxy_url=str(entry["proxy_url"]),
                api_url=str(entry["api_url"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    async def _mint(self) -> CopilotToken:
        github = self.github_token()
        if github is None:
            raise SignInRequired(
                "not signed in to GitHub: run `reaper-lsp login copilot` or the reaper.signIn "
                "command"
            )
        try:
            response = await self._client.get(
                self._api("/copilot_internal/v2/token"),
                headers={
                    "authorization": f"token {github}",
                    "accept": "application/json",
                    **self._editor_headers(),
                },
            )
        except httpx.HTTPError as exc:
            raise CopilotUnavailable(
                f"cannot reach {self.host} for a Copilot token ({type(exc).__name__})"
            ) from None
        if response.status_code == 401:
            if self._stored() is not None:
                self._store.delete("github")
            self._store.delete("copilot")
            raise SignInRequired(
                "GitHub no longer accepts the sign-in (revoked or expired): sign in again with "
                "`reaper-lsp login copilot`"
            )
        if response.status_code in (403, 404):
            raise CopilotUnavailable(
                "this GitHub account has no Copilot access (no subscription, or blocked by the "
                "organisation)"
            )
        if response.status_code != 200:
            raise CopilotUnavailable(f"GitHub answered HTTP {response.status_code} for a token")
        try:
            data = response.json()
            token = str(data["token"])
            expires_at = float(data["expires_at"])
        except (ValueError, KeyError, TypeError):
            raise CopilotUnavailable("GitHub's Copilot token answer was not understood") from None
        register_secret(token)
        now = self._clock()
        refresh_in = float(data.get("refresh_in") or max(60.0, expires_at - now - 300))
        endpoints = data.get("endpoints") if isinstance(data.get("endpoints"), dict) else {}
        minted = CopilotToken(
            token=token,
            expires_at=expires_at,
            refresh_at=min(
                now + max(1.0, refresh_in - REFRESH_MARGIN), expires_at - REFRESH_MARGIN
            ),
            proxy_url=str(endpoints.get("proxy") or DEFAULT_PROXY),
            api_url=str(endpoints.get("api") or DEFAULT_API),
        )
        self._store.put("copilot", {**minted.as_dict(), "host": self.host})
        log.info("minted a Copilot token (valid for %.0f s)", expires_at - now)
        return minted

    def invalidate(self) -> None:
        """Drop the Copilot token (after a 401/403): the next request mints a new one."""
        self._copilot = None
        with contextlib.suppress(Exception):
            self._store.delete("copilot")

    # -- background refresh ---------------------------------------------------------------------

    def start(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._keep_fresh())

    async def _keep_fresh(self) -> None:
        while True:
            try:
                token = await self.copilot_token()
                wait = max(1.0, token.refresh_at - self._clock())
                await self._sleep(wait)
                if self._copilot is token:
                    self._copilot = await self._mint_locked()
            except (SignInRequired, CopilotUnavailable) as exc:
                log.warning("Copilot token refresh stopped: %s", exc)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Copilot token refresh failed; retrying in 30 s")
                await self._sleep(30)

    async def _mint_locked(self) -> CopilotToken:
        if self._minting is None:
            self._minting = asyncio.Lock()
        async with self._minting:
            return await self._mint()

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
