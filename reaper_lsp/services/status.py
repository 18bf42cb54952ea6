"""What the user may want to know about the server: typed status snapshots (`reaper.status`,
`reaper-lsp status`), change events pushed to the editor (`reaper/status`, and a message when the
user must act, once per cause), and the last-run file a later `reaper-lsp status` reads."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from reaper_lsp.logs import redact, redact_obj
from reaper_lsp.providers.base import Provider
from reaper_lsp.providers.health import HealthSnapshot, ProviderEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SignIn:
    signed_in: bool
    source: str

    def to_json(self) -> dict[str, object]:
        return {"signedIn": self.signed_in, "source": self.source}


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """One provider's status. `state` and `summary` are the one reading of it every front end
    shows (the CLI, `:Reaper status`, the statusline): `state` is one of "ready", "unused",
    "unconfigured", "paused", "down" (circuit open), "failing"; `summary` says it in words."""

    configured: bool
    reason: str
    used: bool
    completion_model: str
    chat_model: str
    health: HealthSnapshot | None
    http: dict[str, object]

    @property
    def state(self) -> str:
        h = self.health
        if not self.used:
            return "unused"
        if not self.configured:
            return "unconfigured"
        if h is not None and h.circuit_open_for > 0:
            return "down"
        if h is not None and h.paused_for > 0:
            return "paused"
        if h is not None and h.state == "failing":
            return "failing"
        return "ready"

    @property
    def summary(self) -> str:
        h, state = self.health, self.state
        if state == "unused":
            return "not used (not in completion.providers or chat.providers)"
        if state == "unconfigured":
            return f"not configured: {self.reason or 'unknown reason'}"
        if h is not None and state == "down":
            return (
                f"skipped for {h.circuit_open_for:.0f} s after {h.consecutive_failures} failures:"
                f" {h.last_error}"
            )
        if h is not None and state == "paused":
            return f"paused for {h.paused_for:.0f} s: {h.last_error}"
        if h is not None and state == "failing":
            return f"failing: {h.last_error}"
        return "ready"

    def to_json(self) -> dict[str, object]:
        h = self.health
        return {
            "configured": self.configured,
            "reason": self.reason,
            "used": self.used,
            "state": self.state,
            "summary": self.summary,
            "completionModel": self.completion_model,
            "chatModel": self.chat_model,
            "health": {}
            if h is None
            else {
                "state": h.state,
                "circuitOpenForSeconds": h.circuit_open_for,
                "successes": h.successes,
                "failures": h.failures,
                "consecutiveFailures": h.consecutive_failures,
                "pausedForSeconds": h.paused_for,
                "lastError": h.last_error,
            },
            "http": self.http,
        }


@dataclass(frozen=True, slots=True)
class Status:
    version: str
    sign_in: dict[str, SignIn]
    uptime_seconds: float
    config_file: str
    completion_chain: list[str]
    providers: dict[str, ProviderStatus]
    cache: dict[str, int]
    documents: int
    transports: dict[str, object] = field(default_factory=dict)
    suggestions: dict[str, object] = field(default_factory=dict)
    """Whether suggestions are on (settings and `reaper.toggle`), and whether remote
    providers may be asked."""
    budgets: dict[str, object] = field(default_factory=dict)
    """Daily token budgets: provider → {budget, used} today."""

    def to_json(self) -> dict[str, object]:
        """The `reaper.status` answer: camelCase keys, every string redacted."""
        return redact_obj(
            {
                "version": self.version,
                "signIn": {k: v.to_json() for k, v in self.sign_in.items()},
                "uptimeSeconds": self.uptime_seconds,
                "configFile": self.config_file,
                "completionChain": self.completion_chain,
                "providers": {k: v.to_json() for k, v in self.providers.items()},
                "cache": self.cache,
                "documents": self.documents,
                "transports": self.transports,
                "suggestions": self.suggestions,
                "budgets": self.budgets,
            }
        )


def provider_statuses(
    providers: Mapping[str, Provider],
    used: Collection[str],
    health: Mapping[str, HealthSnapshot],
    metrics: Mapping[str, dict[str, object]],
) -> dict[str, ProviderStatus]:
    """Each provider's status: used by the chains or not, usable or why not, models, health,
    HTTP figures. Reads no file: sign-in files are cached by modification time."""
    return {
        name: ProviderStatus(
            configured=(reason := provider.unusable_reason()) is None,
            reason=reason or "",
            used=name in used,
            completion_model=provider.model_for("completion"),
            chat_model=provider.model_for("chat"),
            health=health.get(name),
            http=metrics.get(name, {}),
        )
        for name, provider in providers.items()
    }


def uptime(started: float) -> float:
    return round(time.time() - started, 1)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A `reaper/status` notification."""

    provider: str
    state: str
    message: str = ""
    user: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"provider": self.provider, "state": self.state}
        if self.message:
            out["message"] = redact(self.message)
        if self.user:
            out["user"] = self.user
        return out


@dataclass(frozen=True, slots=True)
class UserMessage:
    """Something the user must act on (window/showMessage)."""

    text: str
    error: bool = False


Notice = StatusChange | UserMessage


class StatusEvents:
    """Turns the chain's provider events and sign-in changes into notices for every editor
    session listening: a state change each time it changes, a message once per cause."""

    def __init__(self, sign_ins: Callable[[], Mapping[str, SignIn]]) -> None:
        self._sign_ins_now = sign_ins
        self._listeners: list[Callable[[Notice], None]] = []
        self._told: set[str] = set()
        self._sign_ins: dict[str, bool] = {}

    def listen(self, listener: Callable[[Notice], None]) -> Callable[[], None]:
        """Send notices to `listener` from now on; returns what stops that."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def listener(self, notice: Notice) -> None:
        """Pass `notice` on to every listener (one that fails is logged and skipped)."""
        for listener in list(self._listeners):
            try:
                listener(notice)
            except Exception:  # one editor gone wrong must not silence the others
                log.warning("a status listener failed", exc_info=True)

    def forget_told(self, provider: str = "") -> None:
        """Tell again about causes that may have been fixed (all, or `provider`'s)."""
        self._told = {c for c in self._told if provider and not c.startswith(f"{provider}:")}

    def provider_event(self, event: ProviderEvent) -> None:
        if event.state == "healthy" and not event.user_message:
            self.forget_told(event.provider)  # it recovered: a new failure is news again
        if event.user_message:
            self.tell_once(f"{event.provider}:{event.user_message}", event.user_message)
            self.check_sign_ins()
        else:
            self.listener(StatusChange(event.provider, event.state, event.message))

    def tell_once(self, cause: str, text: str) -> None:
        if cause not in self._told:
            self._told.add(cause)
            self.listener(UserMessage(redact(text)))

    def check_sign_ins(self) -> None:
        """Report sign-ins that changed since last look (revoked, expired, or made by another
        process or `reaper-lsp login`)."""
        for account, info in self._sign_ins_now().items():
            provider = "copilot" if account == "github" else account
            known = self._sign_ins.get(provider)
            self._sign_ins[provider] = info.signed_in
            if known is not None and known != info.signed_in:
                state = "signedIn" if info.signed_in else "signedOut"
                self.listener(StatusChange(provider, state))

    def signed(self, provider: str, signed_in: bool, *, user: str = "", message: str = "") -> None:
        """A sign-in or sign-out done through the commands."""
        self._sign_ins[provider] = signed_in
        for cause in [c for c in self._told if c.startswith(f"{provider}:")]:
            self._told.discard(cause)  # a new sign-in may fail for the old reasons again
        state = "signedIn" if signed_in else "signedOut"
        self.listener(StatusChange(provider, state, message, user))


def status_file() -> Path:
    return Path(platformdirs.user_state_dir("reaper-lsp")) / "last-run.json"


def save_last_run(status: Status) -> None:
    """Leave this run's figures where `reaper-lsp status` finds them (redacted)."""
    path = status_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status.to_json(), indent=2), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        log.warning("could not save status to %s: %s", path, exc)
