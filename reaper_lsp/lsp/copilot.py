"""The copilot-language-server surface, so copilot.lua, copilot.vim and copilot-lsp run against
reaper-lsp unchanged (docs/copilot-protocol.md says what each plugin sends and reads): status,
sign-in, version and models here, and the status notifications; completions, panels and
feedback in `copilot_completions.py`; next edits in `copilot_nes.py`.

`checkStatus` answers "OK" with a user whenever something can complete — the offline engine
always can — because copilot.lua asks for ghost text only while it has a user.
"""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

from reaper_lsp import __version__
from reaper_lsp.lsp import copilot_completions, copilot_nes
from reaper_lsp.lsp.copilot_params import SignInConfirmParams, decode
from reaper_lsp.lsp.server import ReaperServer
from reaper_lsp.services.errors import SignInFailed
from reaper_lsp.services.readiness import readiness

if TYPE_CHECKING:  # the sign-in flows load when a sign-in starts
    from reaper_lsp.services.signin import DeviceCode

FINISH_DEVICE_FLOW = "github.copilot.finishDeviceFlow"
UNKNOWN_USER = "GitHub user"
"""Shown when GitHub did not say who is signed in: the plugins need a non-empty `user`."""


# -- status ---------------------------------------------------------------------------------


async def check_status(ls: ReaperServer, params: Any) -> dict[str, object]:
    """`{status: "OK", user}`: the GitHub login when signed in, else what completes."""
    session = ls.session
    login = await session.app.signin.github_login()
    if login is not None:
        return {"status": "OK", "user": login or UNKNOWN_USER}
    return {"status": "OK", "user": f"reaper ({readiness(session).serving})"}


def is_copilot_plugin(ls: ReaperServer) -> bool:
    """The client is a Copilot plugin: they all say who they are in initializationOptions."""
    return "editorPluginInfo" in ls.init_options or "editorInfo" in ls.init_options


class StatusRelay:
    """Sends `statusNotification` (copilot.lua, copilot.vim 1.40) and `didChangeStatus` (later
    copilot.vim, copilot-lsp, sidekick) when the reading changes — never per request, since
    sidekick turns every Warning or Error into a popup."""

    def __init__(self, ls: ReaperServer) -> None:
        self._ls = ls
        self._last: tuple[str, str] | None = None

    def __call__(self) -> None:
        if not is_copilot_plugin(self._ls):
            return  # other clients complain of notifications they do not know (lsp-mode)
        found = readiness(self._ls.session)
        if (found.kind, found.message) == self._last:
            return
        self._last = (found.kind, found.message)
        notify = self._ls.protocol.notify
        notify("statusNotification", {"status": found.kind, "message": found.message})
        notify("didChangeStatus", {"busy": False, "kind": found.kind, "message": found.message})


# -- sign-in --------------------------------------------------------------------------------


async def _device_code(ls: ReaperServer) -> DeviceCode | dict[str, object]:
    """A started GitHub sign-in, or the answer that says there is one already."""
    signin = ls.session.app.signin
    login = await signin.github_login()
    if login is not None:
        return {"status": "AlreadySignedIn", "user": login or UNKNOWN_USER}
    from reaper_lsp.services.signin import DeviceCode

    started = await signin.start("copilot")
    assert isinstance(started, DeviceCode)  # GitHub's sign-in is always the device flow
    return started


def _prompt(started: DeviceCode) -> dict[str, object]:
    return {
        "status": "PromptUserDeviceFlow",
        "userCode": started.user_code,
        "verificationUri": started.verification_uri,
        "expiresIn": started.expires_in,
        "interval": started.interval,
    }


async def sign_in_initiate(ls: ReaperServer, params: Any) -> dict[str, object]:
    started = await _device_code(ls)
    return started if isinstance(started, dict) else _prompt(started)


async def sign_in_confirm(ls: ReaperServer, params: Any) -> dict[str, object]:
    """Waits until the user has typed the code. A failure is an answer, not an error:
    copilot.lua prints `error.message` of a status other than OK."""
    decode(params, SignInConfirmParams, "signInConfirm")
    try:
        user = await ls.session.app.signin.confirm("copilot")
    except SignInFailed as exc:
        return {"status": "Error", "error": {"message": str(exc)}}
    return {"status": "OK", "user": user or UNKNOWN_USER}


async def sign_in(ls: ReaperServer, params: Any) -> dict[str, object]:
    """copilot-lsp and later copilot.vim: the code, and the command that waits for it."""
    started = await _device_code(ls)
    if isinstance(started, dict):
        return started
    command = {"command": FINISH_DEVICE_FLOW, "arguments": [], "title": "Sign in to GitHub"}
    return {**_prompt(started), "command": command}


async def finish_device_flow(ls: ReaperServer, *args: Any) -> dict[str, object]:
    user = await ls.session.app.signin.confirm("copilot")
    return {"status": "OK", "user": user or UNKNOWN_USER}


async def sign_out(ls: ReaperServer, params: Any) -> dict[str, object]:
    await ls.session.app.signin.sign_out("copilot")
    return {"status": "NotSignedIn"}


# -- about ----------------------------------------------------------------------------------


def get_version(ls: ReaperServer, params: Any) -> dict[str, object]:
    return {
        "version": __version__,
        "buildType": "prod",
        "runtimeVersion": f"python/{platform.python_version()}",
    }


def models(ls: ReaperServer, params: Any) -> list[dict[str, object]]:
    """The models of the providers configured now, each chain's first one the default."""
    session = ls.session
    status = session.status()
    out: list[dict[str, object]] = []
    chains = (
        ("completion", session.settings.completion.providers),
        ("chat-panel", session.settings.chat.providers),
    )
    for scope, order in chains:
        first = True
        for name in order:
            found = status.providers.get(name)
            if found is None or not found.configured:
                continue
            model = found.completion_model if scope == "completion" else found.chat_model
            if not model:
                continue
            out.append({"id": f"{name}/{model}", "modelName": f"{model} ({name})",
                        "scopes": [scope], "preview": False, "default": first})  # fmt: skip
            first = False
    return out


def ignored(ls: ReaperServer, params: Any) -> None:
    """Notifications the plugins send that change nothing here (`textDocument/didFocus`,
    copilot.vim 1.40's `notifyChangeConfiguration`)."""


def register(server: ReaperServer) -> None:
    server.status_watchers.append(StatusRelay(server))
    server.feature("checkStatus")(check_status)
    server.feature("signInInitiate")(sign_in_initiate)
    server.feature("signInConfirm")(sign_in_confirm)
    server.feature("signIn")(sign_in)
    server.feature("signOut")(sign_out)
    server.feature("getVersion")(get_version)
    server.feature("copilot/models")(models)
    server.feature("textDocument/didFocus")(ignored)
    server.feature("notifyChangeConfiguration")(ignored)
    server.command(FINISH_DEVICE_FLOW)(finish_device_flow)
    copilot_completions.register(server)
    copilot_nes.register(server)
