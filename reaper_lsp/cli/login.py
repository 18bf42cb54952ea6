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

from reaper_lsp.cli.local import close, local_session
from reaper_lsp.core.sanitize import sanitize_terminal
from reaper_lsp.services.errors import SignInFailed
from reaper_lsp.services.signin import DeviceCode, SignInService

T = TypeVar("T")
_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@contextlib.asynccontextmanager
async def _signin() -> AsyncIterator[SignInService]:
    session = local_session(Path.cwd(), report=False)
    try:
        yield session.app.signin
    finally:
        await close(session)


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
    async with _signin() as signin:
        try:
            started = await signin.start(provider)
            if isinstance(started, DeviceCode):
                _say(f"Open {started.verification_uri} and enter the code: {started.user_code}")
                _open(started.verification_uri, open_browser)
                waiting = signin.confirm(provider, check_copilot=True)
                user = await _with_spinner("waiting for GitHub…", waiting)
                _say(f"Signed in to GitHub as {user or 'an unnamed user'}; Copilot is ready.")
            else:
                url = started.authorize_url
                _say(f"Open this address in a browser on this machine to sign in:\n{url}")
                _open(url, open_browser)
                who = await _with_spinner("waiting for Google…", signin.confirm(provider))
                account = f" as {who}" if who else ""
                _say(f"Signed in to Google{account}; Claude on Vertex AI is ready.")
        except SignInFailed as exc:
            _say(f"reaper-lsp: {exc}", sys.stderr)
            return 1
    return 0


async def logout(provider: str) -> int:
    """Forget reaper-lsp's own sign-in. Exit 0 also when there was none: either way the user
    is now signed out of reaper-lsp, which is what they asked for."""
    async with _signin() as signin:
        try:
            result = await signin.sign_out(provider)
        except SignInFailed as exc:  # a broken token store: say so, never a traceback
            _say(f"reaper-lsp: {exc}", sys.stderr)
            return 1
    if not result.forgotten:
        print(f"Not signed in to {provider}; nothing to forget.")
        if result.other_source:
            _say(
                f"(The sign-in found in {result.other_source} is not reaper-lsp's: sign out there.)"
            )
        return 0
    print(f"Signed out of {provider}.")
    return 0
