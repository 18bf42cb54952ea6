"""SignInService: signing in, confirming and signing out of GitHub (Copilot) and Google (Claude
on Vertex AI), and who is signed in where. The LSP commands and `reaper-lsp login`/`logout` both
use it, so the two cannot drift apart; what a sign-in can fail with is mapped here to
`SignInFailed`, whose message is for the user."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reaper_lsp.auth.errors import AuthProblem
from reaper_lsp.logs import redact
from reaper_lsp.net.errors import NetError
from reaper_lsp.services.errors import InvalidRequest, SignInFailed
from reaper_lsp.services.status import SignIn, StatusEvents

if TYPE_CHECKING:
    from reaper_lsp.auth.github import GitHubAuth
    from reaper_lsp.auth.google import GoogleAuth

ACCOUNTS = {"copilot": "copilot", "github": "copilot", "google": "google",
            "claude": "google", "vertex": "google"}  # fmt: skip
"""What the user may call an account, and the account it is."""
LOGIN_WAIT = 5.0
"""Seconds to wait for GitHub to say who is signed in (when no file says it)."""


def _failures() -> tuple[type[Exception], ...]:
    """What a sign-in may fail with that the user should hear about: credential problems and
    the network. Anything else is a bug. (httpx is imported here: the server's start does not
    need it.)"""
    import httpx

    return (AuthProblem, NetError, httpx.HTTPError)


def account(name: str) -> str:
    """`copilot` or `google` for any name the user may give; `InvalidRequest` otherwise."""
    found = ACCOUNTS.get(name.lower())
    if found is None:
        raise InvalidRequest(f"unknown provider {name!r}; sign in to one of: copilot, google")
    return found


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """A started GitHub sign-in: the user types `user_code` at `verification_uri`."""

    user_code: str
    verification_uri: str
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class BrowserSignIn:
    """A started Google sign-in: the user opens `authorize_url` in a browser on this machine."""

    authorize_url: str


@dataclass(frozen=True, slots=True)
class SignOut:
    forgotten: bool
    """Whether reaper-lsp had a sign-in of its own to forget."""
    other_source: str = ""
    """A sign-in found elsewhere (copilot.vim's files, gcloud's) that stays in use."""


class SignInService:
    """Sign-ins of the App, shared by every editor session."""

    def __init__(
        self,
        github: Callable[[], GitHubAuth],
        google: Callable[[], GoogleAuth],
        *,
        events: StatusEvents,
        signed_in: Callable[[], None],
        google_wanted: Callable[[], bool],
    ) -> None:
        """`signed_in`: told after every change of account (the App clears its cache);
        `google_wanted`: whether Google counts as an account now (built, or Vertex chosen)."""
        self._github = github
        self._google = google
        self._events = events
        self._changed = signed_in
        self._google_wanted = google_wanted

    async def start(self, name: str) -> DeviceCode | BrowserSignIn:
        which = account(name)
        try:
            if which == "copilot":
                code = await self._github().start_sign_in()
                return DeviceCode(
                    code.user_code, code.verification_uri, code.expires_in, code.interval
                )
            return BrowserSignIn(await self._google().start_sign_in())
        except _failures() as exc:
            raise SignInFailed(redact(f"sign-in to {which} could not start: {exc}")) from None

    async def confirm(self, name: str, *, check_copilot: bool = False) -> str:
        """Wait for the started sign-in to complete; the account signed in (a GitHub login, a
        Google address; "" when the service did not say). With `check_copilot`, also fail
        unless GitHub gives this account a Copilot token."""
        which = account(name)
        try:
            if which == "copilot":
                github = self._github()
                user = await github.confirm_sign_in()
                if check_copilot:
                    await github.copilot_token()
                github.start()  # keep the Copilot token fresh from now on
            else:
                user = await self._google().confirm_sign_in()
        except _failures() as exc:
            self._events.signed(which, False, message=str(exc))
            raise SignInFailed(redact(f"sign-in to {which} failed: {exc}")) from None
        self._changed()
        self._events.signed(which, True, user=user)
        return user

    async def sign_out(self, name: str) -> SignOut:
        which = account(name)
        auth: GitHubAuth | GoogleAuth = self._github() if which == "copilot" else self._google()
        source = auth.token_source() or ""
        ours = source == "reaper-lsp" or bool(auth.store_problem)
        try:
            await auth.sign_out()
        except _failures() as exc:
            raise SignInFailed(redact(f"sign-out from {which} failed: {exc}")) from None
        self._changed()
        self._events.signed(which, False)
        remaining = auth.token_source() or ""
        return SignOut(forgotten=ours, other_source="" if remaining == "reaper-lsp" else remaining)

    async def github_login(self) -> str | None:
        """The GitHub login in use; "" when signed in but GitHub did not say who (or could not
        be asked in time), None when signed out."""
        github = self._github()
        if not github.signed_in():
            return None
        try:
            return await asyncio.wait_for(github.user(), LOGIN_WAIT) or ""
        except TimeoutError:
            return ""
        except _failures():
            return ""

    def accounts(self) -> dict[str, SignIn]:
        """Who is signed in where, never the credentials themselves."""
        github = self._github()
        out = {"github": SignIn(github.signed_in(), github.token_source() or "")}
        if self._google_wanted():
            google = self._google()
            out["google"] = SignIn(google.signed_in(), google.token_source() or "")
        return out
