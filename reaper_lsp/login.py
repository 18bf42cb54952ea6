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
from typing import TypeVar

from reaper_lsp import config
from reaper_lsp.engine import Engine

T = TypeVar("T")
_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@contextlib.asynccontextmanager
async def _engine() -> AsyncIterator[Engine]:
    engine = Engine(config.load(workspace_root=Path.cwd()))
    try:
        yield engine
    finally:
        await engine.aclose()


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


def _open(url: str, enabled: bool) -> None:
    if enabled:
        with contextlib.suppress(Exception):
            webbrowser.open(url, new=2)


async def login(provider: str, *, open_browser: bool = True) -> int:
    async with _engine() as engine:
        try:
            if provider == "copilot":
                code = await engine.github.start_sign_in()
                print(
                    f"Open {code.verification_uri} and enter the code: {code.user_code}", flush=True
                )
                _open(code.verification_uri, open_browser)
                user = await _with_spinner("waiting for GitHub…", engine.github.confirm_sign_in())
                await engine.github.copilot_token()
                print(f"Signed in to GitHub as {user}; Copilot is ready.")
            else:
                url = await engine.google.start_sign_in()
                print(
                    f"Open this address in a browser on this machine to sign in:\n{url}", flush=True
                )
                _open(url, open_browser)
                who = await _with_spinner("waiting for Google…", engine.google.confirm_sign_in())
                print(f"Signed in ({who}); Claude on Vertex AI is ready.")
        except Exception as exc:  # every failure is the user's to read, never a traceback
            print(f"reaper-lsp: sign-in failed: {exc}", file=sys.stderr)
            return 1
    return 0


async def logout(provider: str) -> int:
    async with _engine() as engine:
        if provider == "copilot":
            await engine.github.sign_out()
        else:
            await engine.google.sign_out()
    print(f"Signed out of {provider}.")
    return 0
