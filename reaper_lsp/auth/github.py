"""GitHub sign-in for Copilot and the short-lived Copilot token minted from it.

The GitHub token comes from our own device-flow sign-in (token store, key "github"), or from
copilot.vim / copilot.lua's `github-copilot/{apps,hosts}.json` so their users never sign in
twice (those files are only read). The Copilot token is cached in memory and in the store (key
"copilot": a second server reuses it while valid), re-minted ahead of `refresh_in` in the
background, and at once after `invalidate()` (the provider calls it on a 401/403).

GitHub Enterprise: set `github_url` and `github_api_url`; sign-ins are kept per host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from reaper_lsp import __version__
from reaper_lsp.auth.copilot_token import (
    CopilotToken,
    fingerprint,
    margin,
    token_from,
)
from reaper_lsp.auth.copilot_vim import CLIENT_ID, CopilotVimFiles, VimSignIn
from reaper_lsp.auth.device import DeviceCode, DeviceFlowError, poll_for_token, request_device_code
from reaper_lsp.auth.errors import AuthProblem
from reaper_lsp.auth.store import StoreCorrupted, TokenStore
from reaper_lsp.logs import register_secret
from reaper_lsp.settings import CopilotSettings

log = logging.getLogger(__name__)

SCOPE = "read:user"
RETRY_FIRST, RETRY_MAX = 5.0, 300.0
"""Backoff of the background refresh after a failure that may pass (network, 5xx)."""
SIGN_IN_HINT = "run `reaper-lsp login copilot` or the reaper.signIn command"


class SignInRequired(AuthProblem):
    """No usable GitHub token: the user has to sign in (the message says how)."""


class CopilotUnavailable(AuthProblem):
    """GitHub did not mint a Copilot token (no subscription, blocked, unreachable).

    `retryable` is true when trying again later may work (network failure, server error)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class GitHubAuth:
    def __init__(
        self,
        settings: CopilotSettings,
        store: TokenStore,
        client: Callable[[], httpx.AsyncClient],
        *,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._store = store
        self._client_of = client
        """Asked for the HTTP client at each use: a `[http]` change replaces the client."""
        self._env = dict(os.environ if env is None else env)
        self._sleep = sleep
        self._clock = clock
        self._pending: DeviceCode | None = None
        self._copilot: CopilotToken | None = None
        self._rejected: list[str] = []
        """Copilot tokens `invalidate()` dropped: not taken from the store again."""
        self._minting: asyncio.Lock | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._vim = CopilotVimFiles(self._env, self.host)
        self.store_problem: str | None = None
        """Why the token store could not be read, when it could not."""

    def _client(self) -> httpx.AsyncClient:
        return self._client_of()

    def __repr__(self) -> str:
        return f"GitHubAuth(host={self.host!r}, source={self.token_source()!r})"

    # -- where the GitHub token comes from ------------------------------------------------------

    @property
    def host(self) -> str:
        return (urlsplit(self._settings.github_url).hostname or "github.com").lower()

    def _from_copilot_vim(self) -> VimSignIn | None:
        return self._vim.sign_in()

    def _stored(self) -> dict[str, Any] | None:
        try:
            entry = self._store.get("github")
        except StoreCorrupted as exc:
            if self.store_problem is None:
                log.error("%s", exc)
            self.store_problem = str(exc)
            return None
        self.store_problem = None
        if (
            entry
            and str(entry.get("host", self.host)).lower() == self.host
            and isinstance(entry.get("token"), str)
            and entry["token"]
        ):
            return entry
        return None

    def github_token(self) -> str | None:
        """Our own sign-in first, then copilot.vim's; None when there is neither."""
        stored = self._stored()
        if stored is not None:
            return str(stored["token"])
        found = self._from_copilot_vim()
        return found.token if found else None

    def signed_in(self) -> bool:
        return self.github_token() is not None

    def token_source(self) -> str | None:
        """Where the GitHub token comes from: "reaper-lsp", "copilot.vim (<file>)", or None."""
        if self._stored() is not None:
            return "reaper-lsp"
        found = self._from_copilot_vim()
        return f"copilot.vim ({found.path})" if found else None

    # -- device flow ----------------------------------------------------------------------------

    def _github(self, path: str) -> str:
        return self._settings.github_url.rstrip("/") + path

    def _api(self, path: str) -> str:
        return self._settings.github_api_url.rstrip("/") + path

    async def start_sign_in(self) -> DeviceCode:
        """Ask GitHub for a user code; `confirm_sign_in` then waits for the user to enter it."""
        self._pending = await request_device_code(
            self._client(), self._github("/login/device/code"), client_id=CLIENT_ID, scope=SCOPE
        )
        return self._pending

    async def confirm_sign_in(self) -> str:
        """Wait for the pending code to be entered, store the GitHub token, return the login."""
        code = self._pending
        if code is None:
            raise SignInRequired("no sign-in is in progress; start one with reaper.signIn")
        # The poll only measures intervals: a monotonic clock unless tests inject theirs.
        clock = time.monotonic if self._clock is time.time else self._clock
        try:
            answer = await poll_for_token(
                self._client(),
                self._github("/login/oauth/access_token"),
                client_id=CLIENT_ID,
                code=code,
                sleep=self._sleep,
                clock=clock,
            )
        except DeviceFlowError:
            if self._pending is code:
                self._pending = None  # the code is dead: the next attempt starts afresh
            raise
        if self._pending is code:
            self._pending = None
        token = str(answer["access_token"])
        register_secret(token)
        user = await self._user_of(token) or ""
        self._store.put("github", {"token": token, "user": user, "host": self.host})
        with contextlib.suppress(StoreCorrupted):
            self._store.delete("copilot")
        self._copilot = None
        log.info("signed in to %s as %s", self.host, user or "(unknown user)")
        return user

    async def _user_of(self, token: str) -> str | None:
        try:
            response = await self._client().get(
                self._api("/user"),
                headers={
                    "authorization": f"token {token}",
                    "accept": "application/json",
                    **self._editor_headers(),
                },
            )
            if response.status_code != 200:
                return None
            login = response.json().get("login")
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return str(login) if login else None

    async def user(self) -> str | None:
        """The GitHub login of the sign-in in use (asked of GitHub if no one wrote it down)."""
        stored = self._stored()
        if stored is not None:
            if stored.get("user"):
                return str(stored["user"])
            return await self._user_of(str(stored["token"]))
        found = self._from_copilot_vim()
        if found is None:
            return None
        return found.user or await self._user_of(found.token)

    async def sign_out(self) -> None:
        """Forget our sign-in and the Copilot token.

        copilot.vim's own files are never touched: if copilot.vim / copilot.lua is signed in on
        this machine, its sign-in is still reused afterwards (signing out of it is done there),
        and `token_source()` — shown by status — says so.
        """
        self._pending = None
        self._copilot = None
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
        return (
            token is not None
            and token.token not in self._rejected
            and self._clock() < token.expires_at - margin(token)
        )

    async def copilot_token(self, *, force: bool = False) -> CopilotToken:
        """A valid Copilot token: from memory, else the store (another server may have minted
        one), else minted now. `force` mints a new one whatever is cached.

        Raises SignInRequired (no GitHub token, or GitHub revoked it) or CopilotUnavailable.
        """
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
                if cached is not None and self._usable(cached):
                    self._copilot = cached
                    return cached
            self._copilot = await self._mint()
            return self._copilot

    def _from_store(self) -> CopilotToken | None:
        github = self.github_token()
        try:
            entry = self._store.get("copilot")
        except StoreCorrupted:
            return None
        if not entry or github is None:
            return None
        if str(entry.get("host", self.host)).lower() != self.host:
            return None
        if entry.get("github") not in (None, fingerprint(github)):
            return None  # minted for another GitHub sign-in
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

    def _revoked(self) -> SignInRequired:
        source = self.token_source()
        if source == "reaper-lsp":
            with contextlib.suppress(StoreCorrupted):
                self._store.delete("github")
            with contextlib.suppress(StoreCorrupted):
                self._store.delete("copilot")
            return SignInRequired(
                "GitHub no longer accepts the sign-in (revoked or expired); it was forgotten: "
                f"sign in again ({SIGN_IN_HINT})"
            )
        where = source or "copilot.vim"
        return SignInRequired(
            f"GitHub no longer accepts the sign-in of {where}: sign in again there, or "
            f"{SIGN_IN_HINT}"
        )

    async def _mint(self) -> CopilotToken:
        github = self.github_token()
        if github is None:
            raise SignInRequired(f"not signed in to GitHub: {SIGN_IN_HINT}")
        try:
            response = await self._client().get(
                self._api("/copilot_internal/v2/token"),
                headers={
                    "authorization": f"token {github}",
                    "accept": "application/json",
                    **self._editor_headers(),
                },
            )
        except httpx.HTTPError as exc:
            raise CopilotUnavailable(
                f"cannot reach {urlsplit(self._settings.github_api_url).hostname} for a Copilot "
                f"token ({type(exc).__name__})",
                retryable=True,
            ) from None
        status = response.status_code
        if status == 401:
            self._copilot = None
            raise self._revoked()
        if status in (403, 404):
            raise CopilotUnavailable(
                f"the GitHub account signed in on {self.host} has no Copilot access (no "
                "subscription, or Copilot is blocked by its organisation)"
            )
        if status != 200:
            raise CopilotUnavailable(
                f"GitHub answered HTTP {status} when asked for a Copilot token",
                retryable=status >= 500 or status == 429,
            )
        try:
            data = response.json()
            token = data["token"]
            expires_at = float(data["expires_at"])
            if not isinstance(token, str) or not token:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise CopilotUnavailable("GitHub's Copilot token answer was not understood") from None
        register_secret(token)
        minted = token_from(data, token, expires_at, response.headers.get("date"), self._clock())
        entry = {**minted.as_dict(), "host": self.host, "github": fingerprint(github)}
        try:
            self._store.put("copilot", entry)
        except (StoreCorrupted, OSError) as exc:
            log.debug("Copilot token not cached in the store: %s", type(exc).__name__)
        log.info("minted a Copilot token (valid for %.0f s)", minted.expires_at - self._clock())
        return minted

    def invalidate(self) -> None:
        """Drop the Copilot token (after a 401/403): the next `copilot_token()` mints a new one
        rather than reuse it from memory or the store."""
        if self._copilot is not None:
            self._rejected = [*self._rejected[-7:], self._copilot.token]
        self._copilot = None

    # -- background refresh ---------------------------------------------------------------------

    def start(self) -> None:
        """Keep the Copilot token fresh from now on: re-minted ahead of its `refresh_at` by a
        task of the running loop, until `aclose()` (or until the sign-in is gone)."""
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(
                self._keep_fresh(), name="copilot-token-refresh"
            )

    async def _keep_fresh(self) -> None:
        backoff = RETRY_FIRST
        while True:
            try:
                token = await self.copilot_token()
                # At least a second between mints, whatever lifetimes GitHub hands out.
                await self._sleep(max(1.0, token.refresh_at - self._clock()))
                if self._copilot is token:
                    await self._refresh(token)
                backoff = RETRY_FIRST
            except SignInRequired as exc:
                log.warning("Copilot token refresh stopped: %s", exc)
                return
            except CopilotUnavailable as exc:
                if not exc.retryable:
                    log.warning("Copilot token refresh stopped: %s", exc)
                    return
                log.info("Copilot token refresh failed (%s); retrying in %.0f s", exc, backoff)
                await self._sleep(backoff)
                backoff = min(RETRY_MAX, backoff * 2)
            except Exception:
                log.exception("Copilot token refresh failed; retrying in %.0f s", backoff)
                await self._sleep(backoff)
                backoff = min(RETRY_MAX, backoff * 2)

    async def _refresh(self, old: CopilotToken) -> None:
        """Replace `old`: by a newer token another server stored, else by minting."""
        if self._minting is None:
            self._minting = asyncio.Lock()
        async with self._minting:
            if self._copilot is not old:
                return  # replaced meanwhile (forced re-mint, another refresh)
            stored = self._from_store()
            if (
                stored is not None
                and stored.token != old.token
                and stored.refresh_at > self._clock()
                and self._usable(stored)
            ):
                self._copilot = stored
                return
            self._copilot = await self._mint()

    async def aclose(self) -> None:
        """Stop the background refresh."""
        task, self._refresher = self._refresher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
