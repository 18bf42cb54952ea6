"""`reaper-lsp login copilot|google` and `logout`: the sign-ins from a terminal, into the same
token store the server reads (a running server sees the result at its next request)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import webbrowser
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TextIO, TypeVar

from reaper_lsp import config
from reaper_lsp.core.sanitize import sanitize_terminal
from reaper_lsp.services.app import App

T = TypeVar("T")
_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@contextlib.asynccontextmanager
async def _app() -> AsyncIterator[App]:
    app = App(config.load(workspace_root=Path.cwd()))
    try:
        yield app
    finally:
        await app.aclose()


async def _with_spinner(message: str, work: Awaitable[T]) -> T:
    """Await `work` while a spinner turns on stderr (only when stderr is a terminal)."""
    task = asyncio.ensure_future(work)
    if not sys.stderr.isatty():
        print(message, file=sys.stderr)
        return await task
    for frame in itertools.cycle(_FRAMES):
        done, _ = await asyncio.wait({task}, timeout=0.1)
        if done:
            break
        sys.stderr.write(f"\r{frame} {message}")
        sys.stderr.flush()
    sys.stderr.write("\r\033[K")
    return task.result()


def _say(text: str, stream: TextIO | None = None) -> None:
    """Print what a sign-in server sent (codes, addresses, user names, errors) with no
    escape sequence of theirs reaching the terminal."""
    out = stream or sys.stdout
    out.write(sanitize_terminal(text) + "\n")
    out.flush()


def _open(url: str, enabled: bool) -> None:
    if enabled:
        with contextlib.suppress(Exception):
            webbrowser.open(url, new=2)


async def login(provider: str, *, open_browser: bool = True) -> int:
    async with _app() as app:
        try:
            if provider == "copilot":
                code = await app.github.start_sign_in()
                _say(f"Open {code.verification_uri} and enter the code: {code.user_code}")
                _open(code.verification_uri, open_browser)
                user = await _with_spinner("waiting for GitHub…", app.github.confirm_sign_in())
                await app.github.copilot_token()
                _say(f"Signed in to GitHub as {user}; Copilot is ready.")
            else:
                url = await app.google.start_sign_in()
                _say(f"Open this address in a browser on this machine to sign in:\n{url}")
                _open(url, open_browser)
                who = await _with_spinner("waiting for Google…", app.google.confirm_sign_in())
                _say(f"Signed in ({who}); Claude on Vertex AI is ready.")
        except Exception as exc:  # every failure is the user's to read, never a traceback
            _say(f"reaper-lsp: sign-in failed: {exc}", sys.stderr)
            return 1
    return 0


async def logout(provider: str) -> int:
    """Forget reaper-lsp's own sign-in. Exit 0 also when there was none: either way the user
    is now signed out of reaper-lsp, which is what they asked for."""
    async with _app() as app:
        auth = app.github if provider == "copilot" else app.google
        source = auth.token_source()
        if source != "reaper-lsp" and not getattr(auth, "store_problem", None):
            print(f"Not signed in to {provider}; nothing to forget.")
            if source:
                _say(f"(The sign-in found in {source} is not reaper-lsp's: sign out there.)")
            return 0
        try:
            await auth.sign_out()
        except Exception as exc:  # a broken token store: say so, never a traceback
            _say(f"reaper-lsp: sign-out failed: {exc}", sys.stderr)
            return 1
    print(f"Signed out of {provider}.")
    return 0
