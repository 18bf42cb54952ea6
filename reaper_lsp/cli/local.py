"""An App and one session of it for a terminal command (`complete`, `chat`, `status`, `login`),
configured as the server would be for a workspace rooted at `root`."""

from __future__ import annotations

import sys
from pathlib import Path

from reaper_lsp import config
from reaper_lsp.cli.output import out
from reaper_lsp.logs import register_secret
from reaper_lsp.services.app import App
from reaper_lsp.services.session import Session


def local_session(root: Path | None, *, report: bool = True) -> Session:
    """A session over `root` (its `.reaper.toml` included), config errors printed when
    `report`. Close it with `close`."""
    loaded = config.load(workspace_root=root)
    if report:
        for problem in loaded.errors:
            out(f"reaper-lsp: config: {problem}", sys.stderr)
    app = App(loaded)
    session = Session(app, roots=[root] if root is not None else [])
    session.apply(loaded)
    for secret in app.secrets():
        register_secret(secret)
    return session


async def close(session: Session) -> None:
    await session.close()
    await session.app.aclose()
