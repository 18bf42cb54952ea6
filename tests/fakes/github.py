"""Fake GitHub for the Copilot sign-in, on one origin: the device flow (`/login/device/code`,
`/login/oauth/access_token`), the API (`/user`, `/copilot_internal/v2/token`), and the Copilot
proxy and chat API the minted token is for (`/v1/engines/{engine}/completions`,
`/chat/completions`), which reject requests without a live Copilot token or the integration
header, as the real ones do."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.asgi import Receive, Scope, Send, bearer, read_request, send_json, stream
from tests.fakes.openai import _events as openai_events
from tests.fakes.script import Script

CLIENT_ID = "Iv1.b507a08c87ecfe98"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class GitHubState:
    """What the fake GitHub knows; tests script and inspect it (thread-safe)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    polls: list[str] = field(default_factory=lambda: ["authorization_pending", "slow_down"])
    """Answers to the next access-token polls before success (or a final error)."""
    final: str = "success"
    """"success", "expired_token" or "access_denied"."""
    slow_down_interval: int | None = 10
    """The new `interval` a slow_down answer carries (None: the field is left out)."""
    device_interval: int = 5
    device_expires_in: int = 900
    user: str = "octocat"
    github_tokens: set[str] = field(default_factory=set)
    copilot_tokens: dict[str, float] = field(default_factory=dict)
    """Minted Copilot token → expiry (unix time)."""
    lifetime: int = 1800
    refresh_in: int = 1500
    mints: int = 0
    revoked: bool = False
    no_subscription: bool = False
    base_url: str = ""
    proxy_url: str = ""
    """`endpoints.proxy` of minted tokens ("" → base_url)."""
    api_url: str = ""
    """`endpoints.api` of minted tokens ("" → base_url)."""
    omit_endpoints: bool = False
    """Mint tokens without `endpoints` (clients fall back to the public hosts)."""
    device_codes: dict[str, str] = field(default_factory=dict)
    """device code → user code."""

    def valid_copilot(self, token: str) -> bool:
        with self.lock:
            expiry = self.copilot_tokens.get(token)
            return expiry is not None and expiry > time.time()

    def expire_all(self) -> None:
        with self.lock:
            for token in self.copilot_tokens:
                self.copilot_tokens[token] = 0.0


_counter = itertools.count(1)


class FakeGitHub:
    def __init__(self) -> None:
        self.state = GitHubState()
        self.script = Script()
        """Replies of the Copilot proxy / chat API."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        recorded = await read_request(scope, receive, self.script)
        path = scope["path"]
        form = {k: v[0] for k, v in parse_qs(recorded.raw.decode(errors="replace")).items()}
        st = self.state
        if path == "/login/device/code":
            if form.get("client_id") != CLIENT_ID:
                await send_json(send, 400, {"error": "incorrect_client_credentials"}, recorded)
                return
            device, user_code = secrets.token_hex(20), f"ABCD-{next(_counter):04d}"
            with st.lock:
                st.device_codes[device] = user_code
            await send_json(
                send,
                200,
                {
                    "device_code": device,
                    "user_code": user_code,
                    "verification_uri": f"{st.base_url}/login/device",
                    "expires_in": st.device_expires_in,
                    "interval": st.device_interval,
                },
                recorded,
            )
            return
        if path == "/login/oauth/access_token":
            await send_json(send, 200, self._poll(form), recorded)
            return
        if path == "/user":
            token = recorded.headers.get("authorization", "").removeprefix("token ")
            if token not in st.github_tokens:
                await send_json(send, 401, {"message": "Bad credentials"}, recorded)
                return
            await send_json(send, 200, {"login": st.user, "id": 1}, recorded)
            return
        if path == "/copilot_internal/v2/token":
            await self._mint(recorded.headers, send, recorded)
            return
        if path.startswith("/v1/engines/") and path.endswith("/completions"):
            await self._copilot(receive, send, recorded, chat=False)
            return
        if path == "/chat/completions":
            await self._copilot(receive, send, recorded, chat=True)
            return
        await send_json(send, 404, {"message": "Not Found"}, recorded)

    def _poll(self, form: dict[str, str]) -> dict[str, Any]:
        st = self.state
        if form.get("grant_type") != DEVICE_GRANT or form.get("client_id") != CLIENT_ID:
            return {"error": "unsupported_grant_type"}
        with st.lock:
            if form.get("device_code") not in st.device_codes:
                return {"error": "incorrect_device_code"}
            if st.polls:
                error = st.polls.pop(0)
                answer: dict[str, Any] = {"error": error, "error_description": error}
                if error == "slow_down" and st.slow_down_interval is not None:
                    answer["interval"] = st.slow_down_interval
                return answer
            if st.final != "success":
                return {"error": st.final, "error_description": st.final}
            token = "ghu_" + secrets.token_hex(18)
            st.github_tokens.add(token)
            return {"access_token": token, "token_type": "bearer", "scope": ""}

    async def _mint(self, headers: dict[str, str], send: Send, recorded: Any) -> None:
        st = self.state
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "token":
            token = ""  # the exchange is asked with `Authorization: token <github token>`
        with st.lock:
            known = token in st.github_tokens and not st.revoked
            if known and not st.no_subscription:
                st.mints += 1
                now = time.time()
                copilot = f"tid={secrets.token_hex(8)};exp={int(now) + st.lifetime}:sig"
                st.copilot_tokens[copilot] = now + st.lifetime
                body = {
                    "token": copilot,
                    "expires_at": int(now) + st.lifetime,
                    "refresh_in": st.refresh_in,
                    "sku": "free_educational",
                    "individual": True,
                    "endpoints": {
                        "api": st.api_url or st.base_url,
                        "proxy": st.proxy_url or st.base_url,
                        "telemetry": f"{st.base_url}/telemetry",
                    },
                }
                if st.omit_endpoints:
                    del body["endpoints"]
        if not known:
            await send_json(send, 401, {"message": "Bad credentials"}, recorded)
        elif st.no_subscription:
            await send_json(send, 403, {"message": "Resource not accessible"}, recorded)
        else:
            await send_json(send, 200, body, recorded)

    async def _copilot(self, receive: Receive, send: Send, recorded: Any, *, chat: bool) -> None:
        headers = recorded.headers
        if not self.state.valid_copilot(bearer(headers)):
            await send_json(
                send,
                401,
                {"error": {"message": "unauthorized: token expired"}},
                recorded,
                {"x-github-request-id": "fake"},
            )
            return
        if chat and not headers.get("copilot-integration-id"):
            await send_json(
                send,
                400,
                {
                    "error": {
                        "message": "bad request: missing required Copilot-Integration-Id header"
                    }
                },
                recorded,
            )
            return
        if not headers.get("editor-version"):
            await send_json(send, 400, {"error": {"message": "missing Editor-Version"}}, recorded)
            return
        reply = self.script.next_reply()
        if reply.status >= 400 or reply.body is not None:
            body = reply.body if reply.body is not None else {"error": {"message": "error"}}
            merged = {"x-github-request-id": "fake", **reply.headers}
            await send_json(send, reply.status, body, recorded, merged)
            return
        n = recorded.body.get("n", 1) if isinstance(recorded.body, dict) else 1
        texts = reply.choices(n if isinstance(n, int) else 1)
        events = openai_events(reply.text, reply.chunk_size, "copilot", chat, False, texts)
        await stream(
            receive, send, reply, recorded, "text/event-stream", events, ending=len(texts) + 1
        )


def create_app() -> FakeGitHub:
    return FakeGitHub()
