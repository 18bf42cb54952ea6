"""OAuth 2.0 device authorization grant (RFC 8628), including GitHub's ways: form-encoded
requests, JSON answers only with `Accept: application/json`, and "pending" reported as HTTP 200
(the RFC says 400; both are understood)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

from reaper_lsp.auth.errors import AuthProblem
from reaper_lsp.core.sanitize import sanitize_terminal

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5
SLOW_DOWN_STEP = 5
MIN_INTERVAL = 1.0
"""The shortest wait between polls, whatever the server answers (`interval: 0` would make us
poll back to back until the code expires). Lower only for a server on this machine."""
MAX_SHOWN_CHARS = 2000
"""The most of a server's text (user code, address, error description) passed on to the user."""
MAX_TRANSIENT_FAILURES = 3
"""Network errors or 5xx answers in a row tolerated while polling before giving up."""


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int


class DeviceFlowError(AuthProblem):
    """The sign-in cannot go on. `kind` is the OAuth error code ("expired_token",
    "access_denied", ...), or "unsupported" (no device flow for this client/server), "network",
    "http", "protocol"; the message is meant for the user."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_MESSAGES = {
    "expired_token": "the code expired before it was entered; start the sign-in again",
    "access_denied": "the sign-in was cancelled in the browser",
    "unsupported": "the server does not offer the device flow to reaper-lsp",
    "unsupported_grant_type": "the server does not support the device flow",
    "incorrect_client_credentials": "the server rejected reaper-lsp's client id",
    "incorrect_device_code": "the server did not recognise the device code",
    "bad_verification_code": "the server did not recognise the device code",
    "device_flow_disabled": "the device flow is disabled for this application",
}
_UNSUPPORTED_ERRORS = {"device_flow_disabled", "unauthorized_client", "unsupported_grant_type"}
_UNSUPPORTED_STATUS = {401, 403, 404, 422}


class _Transient(Exception):
    """A failure worth another poll: no answer, or a server error."""

    def __init__(self, error: DeviceFlowError) -> None:
        super().__init__(str(error))
        self.error = error


def _host(url: str) -> str:
    return httpx.URL(url).host or url


def _parse(response: httpx.Response) -> dict[str, Any] | None:
    content_type = response.headers.get("content-type", "")
    if "x-www-form-urlencoded" in content_type:  # what GitHub sends without our Accept header
        return {k: v[0] for k, v in parse_qs(response.text).items()}
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


async def _post_form(client: httpx.AsyncClient, url: str, data: dict[str, str]) -> dict[str, Any]:
    try:
        response = await client.post(url, data=data, headers={"accept": "application/json"})
    except httpx.HTTPError as exc:
        raise _Transient(
            DeviceFlowError("network", f"cannot reach {_host(url)} ({type(exc).__name__})")
        ) from None
    payload = _parse(response)
    if response.status_code >= 500:
        raise _Transient(
            DeviceFlowError("http", f"{_host(url)} answered HTTP {response.status_code}")
        )
    if payload is None:
        if response.status_code in _UNSUPPORTED_STATUS:
            raise DeviceFlowError("unsupported", _MESSAGES["unsupported"])
        raise DeviceFlowError(
            "protocol", f"unexpected answer from {_host(url)} (HTTP {response.status_code})"
        )
    if response.status_code >= 400 and "error" not in payload:
        if response.status_code in _UNSUPPORTED_STATUS:
            raise DeviceFlowError("unsupported", _MESSAGES["unsupported"])
        raise DeviceFlowError("http", f"{_host(url)} answered HTTP {response.status_code}")
    return payload


def _error(payload: dict[str, Any]) -> DeviceFlowError:
    code = str(payload.get("error") or "protocol")
    description = sanitize_terminal(str(payload.get("error_description") or "")).strip()
    description = description[:MAX_SHOWN_CHARS]
    message = _MESSAGES.get(code) or description or f"sign-in failed ({code})"
    return DeviceFlowError(code, message)


def _seconds(value: Any, default: int) -> int:
    """A non-negative whole number of seconds, `default` when absent or not a number. (An
    explicit 0 is kept here; `poll_for_token` applies the floor.)"""
    if value is None or isinstance(value, bool):
        return default
    try:
        seconds = int(float(value))
    except (TypeError, ValueError):
        return default
    return seconds if seconds >= 0 else default


def is_loopback(url: str) -> bool:
    """Whether `url` points at this machine (localhost, 127.0.0.0/8, ::1)."""
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def poll_floor(url: str, requested: float | None = None) -> float:
    """The shortest wait between polls of `url`: `requested` (default 0) for a loopback host,
    which only a test or a local mock runs; never under `MIN_INTERVAL` for any other."""
    if is_loopback(url):
        return max(0.0, requested if requested is not None else 0.0)
    return max(MIN_INTERVAL, requested if requested is not None else MIN_INTERVAL)


async def request_device_code(
    client: httpx.AsyncClient, url: str, *, client_id: str, scope: str
) -> DeviceCode:
    """Ask `url` (e.g. `https://github.com/login/device/code`) for a user code."""
    try:
        payload = await _post_form(client, url, {"client_id": client_id, "scope": scope})
    except _Transient as exc:
        raise exc.error from None
    if "error" in payload:
        error = _error(payload)
        if error.kind in _UNSUPPORTED_ERRORS:
            raise DeviceFlowError("unsupported", f"{error} ({error.kind})")
        raise error
    device_code = payload.get("device_code")
    # Both are shown to the user (a terminal, an editor's message): plain text only.
    user_code = sanitize_terminal(str(payload.get("user_code") or ""))[:MAX_SHOWN_CHARS]
    # verification_url: Google's spelling of the RFC's verification_uri.
    uri = sanitize_terminal(
        str(payload.get("verification_uri") or payload.get("verification_url") or "")
    )
    if not (device_code and user_code.strip() and uri):
        raise DeviceFlowError("protocol", "the device code answer lacks required fields")
    if not uri.lower().startswith(("https://", "http://")) or len(uri) > MAX_SHOWN_CHARS:
        # The editor may open it: no javascript:, file: or data: address.
        raise DeviceFlowError("protocol", "the device code answer names no web address")
    return DeviceCode(
        device_code=str(device_code),
        user_code=user_code,
        verification_uri=uri,
        expires_in=_seconds(payload.get("expires_in"), 900) or 900,
        interval=_seconds(payload.get("interval"), DEFAULT_INTERVAL),
    )


async def poll_for_token(
    client: httpx.AsyncClient,
    url: str,
    *,
    client_id: str,
    code: DeviceCode,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    min_interval: float | None = None,
) -> dict[str, Any]:
    """Poll `url` (e.g. `https://github.com/login/oauth/access_token`) every `interval` seconds
    until the user has entered the code; the token answer (with `access_token`).

    `slow_down` changes the interval for this and all later polls: to the `interval` the answer
    carries (GitHub sends the new one), else 5 s more. No interval is shorter than
    `poll_floor(url, min_interval)`: 1 s unless `url` is on this machine. Raises
    DeviceFlowError once the code's `expires_in` has passed, the user denied access, or the
    server answers any other error.
    """
    floor = poll_floor(url, min_interval)
    interval = max(floor, float(code.interval))
    deadline = clock() + code.expires_in
    data = {"client_id": client_id, "device_code": code.device_code, "grant_type": GRANT_TYPE}
    failures = 0
    while True:
        await sleep(interval)
        if clock() >= deadline:
            raise DeviceFlowError("expired_token", _MESSAGES["expired_token"])
        try:
            payload = await _post_form(client, url, data)
        except _Transient as exc:
            failures += 1
            if failures >= MAX_TRANSIENT_FAILURES:
                raise exc.error from None
            continue
        failures = 0
        token = payload.get("access_token")
        if isinstance(token, str) and token:
            return payload
        error = str(payload.get("error") or "")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            given = _seconds(payload.get("interval"), -1)
            interval = max(floor, float(given) if given >= 0 else interval + SLOW_DOWN_STEP)
            continue
        raise _error(payload)
