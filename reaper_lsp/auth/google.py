"""Google sign-in for Claude on Vertex AI: the installed-app authorization-code flow with PKCE
and a loopback redirect, refresh-token storage, access tokens refreshed before they expire, and
reuse of gcloud's application-default credentials when the user already has them."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from reaper_lsp.auth.errors import AuthProblem
from reaper_lsp.auth.loopback import LoopbackReceiver, make_pkce, make_state
from reaper_lsp.auth.store import StoreCorrupted, TokenStore
from reaper_lsp.logs import register_secret
from reaper_lsp.settings import GoogleAuthSettings
from reaper_lsp.workspace import read_text_file

log = logging.getLogger(__name__)

MAX_ADC_BYTES = 64 * 1024
"""gcloud's credentials file is a few hundred bytes; anything larger is not one."""
SCOPE = "openid email https://www.googleapis.com/auth/cloud-platform"
"""`openid email`: the token answer then names the account signed in (its ID token)."""
EARLY = 60.0
"""Seconds before expiry at which an access token is refreshed."""

HOW_TO_CREATE_CLIENT = (
    "Google sign-in needs your own OAuth client: in the Google Cloud console open "
    "APIs & Services → Credentials → Create credentials → OAuth client ID → Desktop app, then "
    'put its id and secret in reaper.toml under [auth.google] client_id = "…" and '
    'client_secret = "…". If you use gcloud, `gcloud auth application-default login` works '
    "instead and is picked up automatically."
)


class GoogleNotConfigured(AuthProblem):
    """No OAuth client configured for the browser sign-in."""


class GoogleSignInRequired(AuthProblem):
    """No usable Google credential: sign in (again)."""


class GoogleAuth:
    def __init__(
        self,
        settings: GoogleAuthSettings,
        store: TokenStore,
        client: Callable[[], httpx.AsyncClient],
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._store = store
        self._client_of = client
        """Asked for the HTTP client at each use: a `[http]` change replaces the client."""
        self._env = dict(os.environ if env is None else env)
        self._clock = clock
        self._access: tuple[str, float] | None = None
        self._flow: tuple[LoopbackReceiver, str] | None = None
        self.store_problem: str | None = None
        """Why the token store could not be read, when it could not."""

    # -- where the refresh token comes from ----------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        return self._client_of()

    def _adc_path(self) -> Path | None:
        explicit = self._env.get("GOOGLE_APPLICATION_CREDENTIALS")
        candidates = [Path(explicit)] if explicit else []
        config = self._env.get("CLOUDSDK_CONFIG")
        if config:
            candidates.append(Path(config) / "application_default_credentials.json")
        home = self._env.get("HOME")
        if home:
            candidates.append(Path(home) / ".config/gcloud/application_default_credentials.json")
        for path in candidates:
            if path.is_file():
                return path
        return None

    def _adc(self) -> tuple[dict[str, Any], Path] | None:
        """gcloud's `authorized_user` credentials (read only, never written)."""
        path = self._adc_path()
        if path is None:
            return None
        text = read_text_file(path, MAX_ADC_BYTES, whole=True)
        try:
            data = json.loads(text) if text is not None else None
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("type") != "authorized_user":
            return None
        if not all(isinstance(data.get(k), str) for k in ("client_id", "refresh_token")):
            return None
        register_secret(data["refresh_token"])
        return data, path

    def _credentials(self) -> tuple[str, str, str] | None:
        """(refresh_token, client_id, client_secret): our sign-in first, then gcloud's."""
        try:
            stored = self._store.get("google")
        except StoreCorrupted as exc:
            if self.store_problem is None:
                log.error("%s", exc)
            self.store_problem = str(exc)
            stored = None
        else:
            self.store_problem = None
        if stored and stored.get("refresh_token"):
            return (
                str(stored["refresh_token"]),
                str(stored.get("client_id") or self._settings.client_id),
                self._settings.client_secret,
            )
        adc = self._adc()
        if adc is not None:
            data = adc[0]
            return data["refresh_token"], data["client_id"], str(data.get("client_secret", ""))
        return None

    def signed_in(self) -> bool:
        return self._credentials() is not None

    def token_source(self) -> str | None:
        try:
            stored = self._store.get("google")
        except StoreCorrupted:
            stored = None
        if stored and stored.get("refresh_token"):
            return "reaper-lsp"
        adc = self._adc()
        return f"gcloud ADC ({adc[1]})" if adc else None

    # -- browser sign-in -----------------------------------------------------------------------

    async def start_sign_in(self) -> str:
        if not self._settings.client_id:
            raise GoogleNotConfigured(HOW_TO_CREATE_CLIENT)
        if self._flow is not None:
            self._flow[0].close()
        state = make_state()
        verifier, challenge = make_pkce()
        receiver = LoopbackReceiver(state)
        await receiver.start()
        self._flow = (receiver, verifier)
        query = {
            "client_id": self._settings.client_id,
            "redirect_uri": receiver.redirect_uri,
            "response_type": "code",
            "scope": SCOPE,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "access_type": "offline",
            "prompt": "consent",
        }
        return f"{self._settings.auth_url}?{urlencode(query)}"

    async def confirm_sign_in(self, timeout: float = 300) -> str:
        if self._flow is None:
            raise GoogleSignInRequired("no Google sign-in is in progress; start one first")
        receiver, verifier = self._flow
        try:
            code = await receiver.wait(timeout)
        except TimeoutError:
            raise GoogleSignInRequired("the Google sign-in was not completed in time") from None
        finally:
            self._flow = None
        answer = await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self._settings.client_id,
                "client_secret": self._settings.client_secret,
                "redirect_uri": receiver.redirect_uri,
                "code_verifier": verifier,
            }
        )
        refresh = answer.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise GoogleSignInRequired("Google sent no refresh token; sign in again")
        register_secret(refresh)
        self._remember(answer)
        assert self._access is not None
        account = account_of(answer.get("id_token"))
        self._store.put(
            "google",
            {
                "refresh_token": refresh,
                "access_token": self._access[0],
                "expires_at": self._access[1],
                "client_id": self._settings.client_id,
                "user": account,
            },
        )
        return account

    def user(self) -> str:
        """The account of our own sign-in, when Google named it ("" otherwise)."""
        stored = self._store.get("google")
        user = stored.get("user") if stored else None
        return user if isinstance(user, str) else ""

    # -- access tokens -------------------------------------------------------------------------

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._client().post(
                self._settings.token_url, data=form, headers={"accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise GoogleSignInRequired(
                f"cannot reach Google's token endpoint ({type(exc).__name__})"
            ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code != 200 or not isinstance(payload, dict):
            error = payload.get("error", f"HTTP {response.status_code}") if payload else ""
            if error == "invalid_grant" and form["grant_type"] == "refresh_token":
                self._store.delete("google")
                raise GoogleSignInRequired(
                    "Google no longer accepts the sign-in (revoked or expired): run "
                    "`reaper-lsp login google`"
                )
            raise GoogleSignInRequired(f"Google refused the token request ({error})")
        return payload

    def _remember(self, answer: dict[str, Any]) -> None:
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise GoogleSignInRequired("Google's answer had no access token")
        register_secret(token)
        expires_in = float(answer.get("expires_in") or 3600)
        self._access = (token, self._clock() + expires_in)

    async def access_token(self) -> str:
        if self._access is not None and self._clock() < self._access[1] - EARLY:
            return self._access[0]
        stored = self._store.get("google")
        fresh = bool(stored and stored.get("access_token") and stored.get("expires_at"))
        if stored and fresh and self._clock() < float(stored["expires_at"]) - EARLY:
            self._access = (str(stored["access_token"]), float(stored["expires_at"]))
            return self._access[0]
        credentials = self._credentials()
        if credentials is None:
            raise GoogleSignInRequired(
                "not signed in to Google: run `reaper-lsp login google` (or `gcloud auth "
                "application-default login`)"
            )
        refresh, client_id, client_secret = credentials
        answer = await self._token_request(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "client_id": client_id,
                "client_secret": client_secret,
            }
        )
        self._remember(answer)
        assert self._access is not None
        if stored and stored.get("refresh_token") == refresh:
            self._store.put(
                "google",
                {**stored, "access_token": self._access[0], "expires_at": self._access[1]},
            )
        return self._access[0]

    def invalidate(self) -> None:
        """Forget the access token (after a 401): the next request refreshes it."""
        self._access = None
        stored = self._store.get("google")
        if stored and "access_token" in stored:
            stored.pop("access_token")
            stored.pop("expires_at", None)
            self._store.put("google", stored)

    async def sign_out(self) -> None:
        """Forget our sign-in (gcloud's own credentials are theirs to remove)."""
        self._access = None
        self._store.delete("google")

    async def aclose(self) -> None:
        if self._flow is not None:
            self._flow[0].close()
            self._flow = None


def account_of(id_token: object) -> str:
    """The e-mail address an OpenID Connect ID token names, "" when there is none. The token
    came straight from Google's token endpoint over TLS, so its signature need not be checked
    (OpenID Connect Core 1.0, 3.1.3.7)."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return ""
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return ""
    email = claims.get("email") if isinstance(claims, dict) else None
    return email if isinstance(email, str) else ""
