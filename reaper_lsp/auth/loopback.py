"""The browser half of a native app's OAuth sign-in (RFC 8252 loopback redirect, RFC 7636
PKCE): a one-shot HTTP listener on 127.0.0.1 and an ephemeral port that takes the
authorization code from the redirect, checks `state`, answers one page and closes.

Whatever the page shows is HTML-escaped, and the page may run no script at all (its
Content-Security-Policy): the query it answers can be crafted by anyone who can make the
browser visit the port."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import secrets
from urllib.parse import parse_qs, urlsplit

from reaper_lsp.auth.errors import AuthProblem
from reaper_lsp.core.sanitize import sanitize_terminal

MAX_REQUEST_BYTES = 16 * 1024
MAX_ERROR_CHARS = 200
"""How much of the provider's `error` the page and the message quote."""
_PAGE = (
    "<!doctype html><meta charset=utf-8><title>reaper-lsp</title>"
    "<body style='font-family:sans-serif'><h2>{title}</h2><p>{text}</p></body>"
)


_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'"


class OAuthStateMismatch(AuthProblem):
    """The redirect carried another `state` than the one we sent: possibly forged; refused."""


class OAuthDenied(AuthProblem):
    """The provider redirected with an error (the user declined, or the request was bad)."""


def make_pkce() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)[:64]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


def make_state() -> str:
    return secrets.token_urlsafe(24)


class LoopbackReceiver:
    """Call `await start()`, send the user to the authorize URL with `redirect_uri`, then
    `await wait(timeout)` for the code. The port is released after the first real answer."""

    def __init__(self, state: str) -> None:
        self._state = state
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[str] | None = None
        self.port = 0

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self._result = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def wait(self, timeout: float) -> str:
        assert self._result is not None, "start() first"
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        try:
            if len(head) > MAX_REQUEST_BYTES:
                await _answer(writer, 431, "Request too large", "")
                return
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split(" ")
            target = parts[1] if len(parts) == 3 else ""
            url = urlsplit(target)
            if parts[0] != "GET" or url.path != "/":
                await _answer(writer, 404, "Not found", "")
                return
            await self._callback(writer, parse_qs(url.query))
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def _callback(self, writer: asyncio.StreamWriter, query: dict[str, list[str]]) -> None:
        result = self._result
        if result is None or result.done():
            await _answer(writer, 410, "Sign-in already finished", "You can close this tab.")
            return
        state = (query.get("state") or [""])[0]
        if not secrets.compare_digest(state, self._state):
            await _answer(writer, 400, "Sign-in refused", "The answer did not match this sign-in.")
            result.set_exception(
                OAuthStateMismatch("the sign-in redirect carried a wrong state; refused")
            )
            return
        if "error" in query:
            error = sanitize_terminal(query["error"][0])[:MAX_ERROR_CHARS]
            await _answer(writer, 200, "Sign-in cancelled", f"Google said: {error}.")
            result.set_exception(OAuthDenied(f"the sign-in was not granted ({error})"))
            return
        code = (query.get("code") or [""])[0]
        if not code:
            await _answer(writer, 400, "Sign-in failed", "The answer had no code.")
            result.set_exception(OAuthDenied("the sign-in redirect had no code"))
            return
        await _answer(writer, 200, "Signed in to reaper-lsp", "You can close this tab.")
        result.set_result(code)


async def _answer(writer: asyncio.StreamWriter, status: int, title: str, text: str) -> None:
    body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 410: "Gone"}.get(status, "Error")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Security-Policy: {_POLICY}\r\nX-Content-Type-Options: nosniff\r\n"
        # The address bar holds the authorization code: no page it links to may see it.
        "Referrer-Policy: no-referrer\r\nCache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(OSError):
        await writer.drain()
