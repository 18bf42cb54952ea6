"""copilot.vim / copilot.lua's sign-in (`github-copilot/{apps,hosts}.json`), so their users
never sign in twice. The files are only read, and only again when they change."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reaper_lsp.logs import register_secret
from reaper_lsp.workspace import read_text_file

CLIENT_ID = "Iv1.b507a08c87ecfe98"
"""The Copilot app's OAuth client id (whose tokens the Copilot token exchange accepts)."""
MAX_BYTES = 256 * 1024

Stamp = tuple[tuple[int, int, int] | None, ...]


@dataclass
class VimSignIn:
    token: str = field(repr=False)
    user: str
    path: Path


class CopilotVimFiles:
    """The sign-in copilot.vim keeps for `host`, cached by the files' inode, mtime and size."""

    def __init__(self, env: Mapping[str, str], host: str) -> None:
        base = env.get("XDG_CONFIG_HOME") or ""
        if not base:
            home = env.get("HOME")
            base = str(Path(home) / ".config") if home else str(Path.home() / ".config")
        folder = Path(base).expanduser() / "github-copilot"
        self.files = [folder / "apps.json", folder / "hosts.json"]
        self.host = host
        self._stamp: Stamp | None = None
        self._found: VimSignIn | None = None

    def sign_in(self) -> VimSignIn | None:
        stamps: list[tuple[int, int, int] | None] = []
        for path in self.files:
            try:
                st = path.stat()
                stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append(None)
        stamp = tuple(stamps)
        if stamp != self._stamp:
            self._stamp = stamp
            self._found = self._read()
        return self._found

    def _read(self) -> VimSignIn | None:
        # Best first: the entry of the Copilot app (whose tokens the exchange accepts) in
        # apps.json, then hosts.json (older copilot.vim), then other apps' entries for the host.
        ranked: list[tuple[int, VimSignIn]] = []
        for order, path in enumerate(self.files):
            text = read_text_file(path, MAX_BYTES)
            if text is None:
                continue
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            for key, entry in data.items():
                if not isinstance(key, str) or not isinstance(entry, dict):
                    continue
                host, _, app = key.partition(":")
                token = entry.get("oauth_token")
                if host.lower() != self.host or not isinstance(token, str) or not token:
                    continue
                register_secret(token)
                rank = order if app in ("", CLIENT_ID) else 2
                ranked.append((rank, VimSignIn(token, str(entry.get("user") or ""), path)))
        ranked.sort(key=lambda item: item[0])
        return ranked[0][1] if ranked else None
