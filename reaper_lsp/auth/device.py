"""OAuth 2.0 device authorization grant (RFC 8628) as GitHub implements it: form-encoded
requests, JSON answers with `Accept: application/json`, and "pending" reported as HTTP 200."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP = 5


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int


class DeviceFlowError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_MESSAGES = {
    "expired_token": "the code expired before it was entered; start the sign-in again",
    "access_denied": "the sign-in was cancelled in the browser",
    "unsupported_grant_type": "the server does not support the device flow",
    "incorrect_client_credentials": "the server rejected reaper-lsp's client id",
    "incorrect_device_code": "the server did not recognise the device code",
    "device_flow_disabled": "the device flow is disabled for this application",
}


async def _post_form(client: httpx.AsyncClient, url: str, data: dict[str, str]) -> dict[str, Any]:
    try:
        response = await client.post(url, data=data, headers={"accept": "application/json"})
    except httpx.HTTPError as exc:
        raise DeviceFlowError("network", f"cannot reach {httpx.URL(url).host}: {exc}") from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise DeviceFlowError(
            "protocol",
            f"unexpected answer from {httpx.URL(url).host} (HTTP {response.status_code})",
        )
    if response.status_code >= 400 and "error" not in payload:
        raise DeviceFlowError("http", f"HTTP {response.status_code} from {httpx.URL(url).host}")
    return payload


async def request_device_code(
    client: httpx.AsyncClient, url: str, *, client_id: str, scope: str
) -> DeviceCode:
    payload = await _post_form(client, url, {"client_id": client_id, "scope": scope})
    if "error" in payload:
        kind = str(payload["error"])
        raise DeviceFlowError(
            kind, _MESSAGES.get(kind, str(payload.get("error_description", kind)))
        )
    try:
        return DeviceCode(
            device_code=str(payload["device_code"]),
            user_code=str(payload["user_code"]),
            verification_uri=str(
                payload.get("verification_uri") or payload.get("verification_url")
            ),
            expires_in=int(payload.get("expires_in", 900)),
            interval=max(0, int(payload.get("interval", 5))),
        )
    except (KeyError, TypeError, ValueError):
        raise DeviceFlowError("protocol", "the device code answer lacks required fields") from None


async def poll_for_token(
    client: httpx.AsyncClient,
    url: str,
    *,
    client_id: str,
    code: DeviceCode,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll until the user has entered the code; the token answer (with `access_token`)."""
    interval = float(code.interval)
    deadline = clock() + code.expires_in
    data = {"client_id": client_id, "device_code": code.device_code, "grant_type": GRANT_TYPE}
    while True:
        await sleep(interval)
        if clock() >= deadline:
            raise DeviceFlowError("expired_token", _MESSAGES["expired_token"])
        payload = await _post_form(client, url, data)
        if isinstance(payload.get("access_token"), str) and payload["access_token"]:
            return payload
        error = str(payload.get("error", ""))
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            given = payload.get("interval")
            interval = float(given) if isinstance(given, int | float) else interval + SLOW_DOWN_STEP
            continue
        raise DeviceFlowError(
            error or "protocol",
            _MESSAGES.get(error) or str(payload.get("error_description") or "sign-in failed"),
        )
