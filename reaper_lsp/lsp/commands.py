"""The commands about the server itself: `reaper.status`, `reaper.clearCache`, and the sign-ins
(`reaper.signIn`, `reaper.signInConfirm`, `reaper.signOut`), which `SignInService` does for the
terminal's `reaper-lsp login` too."""

from __future__ import annotations

import attrs
from lsprotocol import types as lsp

from reaper_lsp.lsp.server import ReaperServer


@attrs.define
class ProviderArgs:
    """`{provider}` of the sign-in commands: copilot (alias github) or google (claude, vertex)."""

    provider: str = "copilot"


def status(ls: ReaperServer) -> dict[str, object]:
    return ls.session.status().to_json()


def clear_cache(ls: ReaperServer) -> dict[str, object]:
    ls.session.app.cache.clear()
    return {"cleared": True}


async def sign_in(ls: ReaperServer, args: ProviderArgs) -> dict[str, object]:
    from reaper_lsp.services.signin import BrowserSignIn, account

    which = account(args.provider)
    started = await ls.session.app.signin.start(which)
    if isinstance(started, BrowserSignIn):
        url = started.authorize_url
        ls.show(lsp.MessageType.Info, f"Google sign-in: open {url} in a browser on this machine")
        ls.open_in_browser(url)
        return {"provider": "google", "authorizeUrl": url}
    # Stock clients show no command result: say the code where every editor shows it.
    minutes = max(1, round(started.expires_in / 60))
    ls.show(
        lsp.MessageType.Info,
        f"To sign in to Copilot, open {started.verification_uri} and type {started.user_code} "
        f"(valid for {minutes} min)",
    )
    ls.open_in_browser(started.verification_uri)
    return {
        "provider": "copilot",
        "userCode": started.user_code,
        "verificationUri": started.verification_uri,
        "expiresIn": started.expires_in,
        "interval": started.interval,
    }


async def sign_in_confirm(ls: ReaperServer, args: ProviderArgs) -> dict[str, object]:
    from reaper_lsp.services.signin import account

    which = account(args.provider)
    user = await ls.session.app.signin.confirm(which)
    return {"status": "OK", "provider": which, "user": user}


async def sign_out(ls: ReaperServer, args: ProviderArgs) -> dict[str, object]:
    from reaper_lsp.services.signin import account

    which = account(args.provider)
    await ls.session.app.signin.sign_out(which)
    return {"status": "OK", "provider": which}


def register(server: ReaperServer) -> None:
    server.command("reaper.status")(status)
    server.command("reaper.clearCache")(clear_cache)
    server.command("reaper.signIn")(sign_in)
    server.command("reaper.signInConfirm")(sign_in_confirm)
    server.command("reaper.signOut")(sign_out)
