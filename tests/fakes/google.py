"""Fake Google OAuth: `/authorize` plays the consenting user (302 to the loopback redirect with
a code) and `/token` exchanges codes only with the right PKCE verifier (recomputing S256),
client and redirect URI, and refreshes tokens (`invalid_grant` once revoked)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.fakes.asgi import Receive, Scope, Send, read_request, send_json
from tests.fakes.script import Script


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str = ""


@dataclass
class GoogleState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    client_id: str = "fake-client.apps.googleusercontent.com"
    client_secret: str = "fake-secret"
    expires_in: int = 3599
    codes: dict[str, _Grant] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: set[str] = field(default_factory=set)
    grants: int = 0
    refreshes: int = 0
    deny: bool = False
    email: str = "ada@example.com"
    """The account signed in: named in an ID token when the scope asks for `openid email`."""

    def revoke_all(self) -> None:
        with self.lock:
            self.refresh_tokens.clear()
            self.access_tokens.clear()


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class FakeGoogle:
    def __init__(self) -> None:
        self.state = GoogleState()
        self.script = Script()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        recorded = await read_request(scope, receive, self.script)
        if scope["path"] == "/authorize":
            query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            await self._authorize(query, send, recorded)
        elif scope["path"] == "/token":
            form = {k: v[0] for k, v in parse_qs(recorded.raw.decode()).items()}
            status, body = self._token(form)
            await send_json(send, status, body, recorded)
        else:
            await send_json(send, 404, {"error": "not_found"}, recorded)

    async def _authorize(self, query: dict[str, str], send: Send, recorded: Any) -> None:
        st = self.state
        ok = (
            query.get("client_id") == st.client_id
            and query.get("response_type") == "code"
            and query.get("code_challenge_method") == "S256"
            and query.get("redirect_uri", "").startswith("http://127.0.0.1:")
            and "cloud-platform" in query.get("scope", "")
        )
        if not ok:
            await send_json(send, 400, {"error": "invalid_request"}, recorded)
            return
        if st.deny:
            params = {"error": "access_denied", "state": query.get("state", "")}
        else:
            code = "4/" + secrets.token_urlsafe(16)
            with st.lock:
                st.codes[code] = _Grant(
                    query["client_id"],
                    query["redirect_uri"],
                    query.get("code_challenge", ""),
                    query.get("scope", ""),
                )
            params = {"code": code, "state": query.get("state", ""), "scope": query["scope"]}
        location = f"{query['redirect_uri']}?{urlencode(params)}"
        await send(
            {
                "type": "http.response.start",
                "status": 302,
                "headers": [(b"location", location.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})
        recorded.completed.set()

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        st = self.state
        with st.lock:
            if (
                form.get("client_id") != st.client_id
                or form.get("client_secret") != st.client_secret
            ):
                return 401, {"error": "invalid_client"}
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                grant = st.codes.pop(form.get("code", ""), None)
                if (
                    grant is None
                    or grant.redirect_uri != form.get("redirect_uri")
                    or s256(form.get("code_verifier", "")) != grant.challenge
                ):
                    return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
                st.grants += 1
                refresh = "1//" + secrets.token_urlsafe(24)
                st.refresh_tokens.add(refresh)
                return 200, self._issue(refresh, grant.scope)
            if grant_type == "refresh_token":
                if form.get("refresh_token") not in st.refresh_tokens:
                    return 400, {
                        "error": "invalid_grant",
                        "error_description": "Token has been expired or revoked.",
                    }
                st.refreshes += 1
                return 200, self._issue(None)
            return 400, {"error": "unsupported_grant_type"}

    def _issue(self, refresh: str | None, scope: str = "") -> dict[str, Any]:
        access = "ya29." + secrets.token_urlsafe(24)
        self.state.access_tokens.add(access)
        answer: dict[str, Any] = {
            "access_token": access,
            "expires_in": self.state.expires_in,
            "scope": scope or "https://www.googleapis.com/auth/cloud-platform",
            "token_type": "Bearer",
        }
        if refresh:
            answer["refresh_token"] = refresh
        if {"openid", "email"} <= set(scope.split()):
            answer["id_token"] = self._id_token()
        return answer

    def _id_token(self) -> str:
        """An ID token as Google's token endpoint sends one (signed; clients that got it
        straight from the endpoint over TLS need not check the signature)."""

        def part(value: dict[str, Any]) -> str:
            raw = base64.urlsafe_b64encode(json.dumps(value).encode()).decode()
            return raw.rstrip("=")

        claims = {
            "iss": "https://accounts.google.com",
            "aud": self.state.client_id,
            "email": self.state.email,
            "email_verified": True,
            "sub": "1234567890",
        }
        signature = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{signature}"


def create_app() -> FakeGoogle:
    return FakeGoogle()
