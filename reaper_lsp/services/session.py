"""Session: one editor connection — its workspace folders and documents, the editor it is, its
settings overlay (the workspace `.reaper.toml`, `initializationOptions`,
`workspace/didChangeConfiguration`), its offline engine, and the per-session services that work
with the App's shared parts. Closing a session leaves the App and every other session as they
were.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reaper_lsp import __version__, config
from reaper_lsp.config import LoadedConfig
from reaper_lsp.core.scrub import Exclusions
from reaper_lsp.providers.chain import LOCAL
from reaper_lsp.providers.local import LocalProvider
from reaper_lsp.services.app import App
from reaper_lsp.services.chat import ChatService
from reaper_lsp.services.code_actions import CodeActionService
from reaper_lsp.services.completion import CompletionService
from reaper_lsp.services.status import Notice, Status, provider_statuses, save_last_run, uptime
from reaper_lsp.settings import Settings
from reaper_lsp.workspace import Workspace, uri_to_path

_ids = itertools.count(1)


class Session:
    """One editor connection to the App."""

    def __init__(
        self,
        app: App,
        *,
        roots: Sequence[Path] = (),
        editor: str = "",
        init_options: Mapping[str, Any] | None = None,
    ) -> None:
        """`editor`: `name/version` from the client's `clientInfo` (Copilot's Editor-Version
        header); `init_options`: the client's `initializationOptions`."""
        self.id = next(_ids)
        self.app = app
        self.editor = editor
        self.started = time.time()
        self.workspace = Workspace(roots)
        self.init_options: dict[str, Any] = dict(init_options or {})
        self.client_settings: dict[str, Any] = {}
        self.loaded = app.loaded
        self.local = LocalProvider(self.workspace.documents, workspace_roots=self.workspace.roots)
        settings = self.settings
        self.completion = CompletionService(
            app, self.workspace, self.local, settings.completion, editor=editor,
            excluded=self.excluded,
        )  # fmt: skip
        self.chat = ChatService(
            app, self.workspace, self.local, settings.chat,
            timeout=settings.http.read_timeout / 1000, editor=editor,
        )  # fmt: skip
        self.actions = CodeActionService(self.workspace, self.chat)
        self._unlisten: Callable[[], None] | None = None
        self._exclusions: tuple[LoadedConfig, Exclusions] | None = None

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    # -- privacy --------------------------------------------------------------------------------

    @property
    def exclusions(self) -> Exclusions:
        """The user's patterns and this session's additions (config only ever adds them)."""
        if self._exclusions is None or self._exclusions[0] is not self.loaded:
            privacy = self.settings.privacy
            patterns = (*privacy.exclude, *privacy.exclude_extra)
            found = Exclusions.of(patterns, home=self.app.env.get("HOME"))
            self._exclusions = (self.loaded, found)
        return self._exclusions[1]

    def excluded(self, uri: str) -> bool:
        """Whether the document at `uri` must never reach a remote provider, in any role."""
        path = uri_to_path(uri)
        if path is None:
            return self.exclusions.excludes(self.workspace.relative_path(uri))
        for root in self.workspace.roots:
            if path == root or root in path.parents:
                return self.exclusions.excludes(path.relative_to(root).as_posix())
        return self.exclusions.excludes(str(path))

    @property
    def remote_allowed(self) -> bool:
        """Remote providers may be used in this session (no source said otherwise)."""
        return self.settings.privacy.remote

    # -- configuration --------------------------------------------------------------------------

    def load_config(self) -> LoadedConfig:
        """Every source read again: the user file, this session's workspace file and overlay."""
        return config.load(
            env=self.app.env,
            init_options=self.init_options,
            client_settings=self.client_settings,
            workspace_root=self.workspace.roots[0] if self.workspace.roots else None,
        )

    def apply(self, loaded: LoadedConfig) -> None:
        """Use `loaded` from now on; the App takes its user-level part (the user file may have
        changed), which no session's overlay can touch."""
        self.loaded = loaded
        if loaded.user_settings != self.app.settings or loaded.user_file != self.app.user_file:
            self.app.reconfigure(loaded)
        settings = loaded.settings
        self.completion.reconfigure(settings.completion)
        self.chat.reconfigure(settings.chat, timeout=settings.http.read_timeout / 1000)

    # -- life cycle -----------------------------------------------------------------------------

    def listen(self, listener: Callable[[Notice], None]) -> None:
        """Send the App's status notices to this session's editor."""
        if self._unlisten is None:
            self._unlisten = self.app.events.listen(listener)

    async def start(self) -> None:
        """Background work that must not delay `initialize`: the workspace scan, and the App's
        own start for this session's providers (done once for the App)."""
        await self.local.start_workspace_scan()
        settings = self.settings
        await self.app.start([settings.completion.providers, settings.chat.providers])

    async def close(self) -> None:
        """The editor went away: stop this session's work; the App stays."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        self.completion.close()
        await self.local.aclose()

    # -- status ---------------------------------------------------------------------------------

    def status(self) -> Status:
        app = self.app
        providers = {**app.chain.providers, LOCAL: self.local}
        return Status(
            version=__version__,
            sign_in=app.signin.accounts(),
            uptime_seconds=uptime(app.started),
            config_file=str(app.user_file) if app.user_file else "",
            completion_chain=[*self.settings.completion.providers, LOCAL],
            providers=provider_statuses(
                providers,
                {*self.settings.completion.providers, *self.settings.chat.providers, LOCAL},
                app.chain.health.snapshot(),
                app.metrics.snapshot(),
            ),
            cache={"entries": len(app.cache), **app.cache.stats.as_dict()},
            documents=len(self.workspace.documents),
            transports=app.clients.snapshot(),
        )

    def save_status(self) -> None:
        save_last_run(self.status())
