"""What one editor session may send, and whether it gets suggestions at all.

- The privacy rules (`[privacy]`: excluded files, remote providers off for a project) as the
  reason a request must stay on this machine, naming the rule that says so; and the `Origin`
  every request carries (what the rules and the audit read, never content).
- The suggestion switches: `[completion] enabled`, `disabled_languages`, `enabled_languages`
  (an allow-list wins when set), overridden by `reaper.toggle`, whose state (`Toggles`) the App
  keeps in memory so every editor window agrees.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from reaper_lsp.core.scrub import Exclusions
from reaper_lsp.core.types import ContextSnippet
from reaper_lsp.providers.base import Origin, Purpose
from reaper_lsp.services.errors import InvalidRequest
from reaper_lsp.settings import Settings
from reaper_lsp.workspace import Workspace, language_of, uri_to_path

Scope = Literal["global", "language", "workspace"]
SCOPES: tuple[Scope, ...] = ("global", "language", "workspace")
REMOTE_OFF = "remote providers are off for this project ([privacy] remote = false)"


@dataclass(slots=True)
class Toggles:
    """`reaper.toggle`'s overrides of the settings (absent: the settings decide)."""

    everything: bool | None = None
    languages: dict[str, bool] = field(default_factory=dict)
    workspaces: dict[str, bool] = field(default_factory=dict)
    """By workspace root (its path)."""

    def to_json(self) -> dict[str, object]:
        return {"global": self.everything, "languages": dict(self.languages),
                "workspaces": dict(self.workspaces)}  # fmt: skip


class SessionView(Protocol):
    """What the policy reads of its session."""

    @property
    def settings(self) -> Settings: ...

    @property
    def exclusions(self) -> Exclusions: ...

    @property
    def workspace(self) -> Workspace: ...


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8", errors="replace"))


class Policy:
    """The rules of one session; `toggles` are the App's (shared by every session)."""

    def __init__(self, session: SessionView, toggles: Toggles, *, editor: str = "") -> None:
        self.session = session
        self.toggles = toggles
        self.editor = editor
        self._rules: tuple[Exclusions | None, dict[str, str]] = (None, {})
        """The rule found for each excluded document, under the exclusions in force."""

    # -- what may leave the machine ---------------------------------------------------------

    def remote_off(self) -> str:
        """Why no remote provider may be asked in this session ("" when they may)."""
        return "" if self.session.settings.privacy.remote else REMOTE_OFF

    def excluded_by(self, uri: str) -> str:
        """Why the document at `uri` must never reach a remote provider, in any role (the
        rule that excludes it), or ""."""
        exclusions = self.session.exclusions
        path = self._rule_path(uri)
        if not exclusions.excludes(path):
            return ""
        if self._rules[0] is not exclusions:  # the configuration changed
            self._rules = (exclusions, {})
        found = self._rules[1].get(uri)
        if found is None:
            found = self._rules[1][uri] = self._rule(uri, path, exclusions)
        return found

    def _rule(self, uri: str, path: str, exclusions: Exclusions) -> str:
        """Which rule excludes `path` (a search worth doing once per document)."""
        name = self.session.workspace.relative_path(uri)
        if Exclusions((), exclusions.home).excludes(path):
            return f"{name} is a secret store under the home directory, never sent"
        for pattern in exclusions.patterns:
            if Exclusions((pattern,), exclusions.home).excludes(path):
                return f"{name} is excluded by [privacy] pattern {pattern!r}"
        return f"{name} is excluded by [privacy] exclude"

    def excluded(self, uri: str) -> bool:
        return self.session.exclusions.excludes(self._rule_path(uri))

    def private(self, uri: str) -> str:
        """Why a request about `uri` must stay on this machine ("" when it may leave)."""
        return self.remote_off() or (self.excluded_by(uri) if uri else "")

    @property
    def local_allowed(self) -> bool:
        """The offline engine may complete what must stay on the machine."""
        return self.session.settings.privacy.excluded_local

    def _rule_path(self, uri: str) -> str:
        """The path the exclusion patterns are matched against: relative to its workspace
        root, else absolute (the secret stores under home are found either way)."""
        path = uri_to_path(uri)
        if path is None:
            return self.session.workspace.relative_path(uri)
        for root in self.session.workspace.roots:
            if path == root or root in path.parents:
                return path.relative_to(root).as_posix()
        return str(path)

    def origin(
        self,
        purpose: Purpose,
        uri: str,
        language: str = "",
        *,
        prefix: str = "",
        suffix: str = "",
        context: Iterable[ContextSnippet] = (),
    ) -> Origin:
        """The origin of a request about `uri`; `context`: the other code that goes with it."""
        context = list(context)
        return Origin(
            purpose=purpose,
            client=self.editor,
            path=self.session.workspace.relative_path(uri) if uri else "",
            language=language,
            prefix_bytes=_nbytes(prefix),
            suffix_bytes=_nbytes(suffix),
            context_bytes=sum(_nbytes(snippet.text) for snippet in context),
            context_files=tuple(dict.fromkeys(snippet.filename for snippet in context)),
            private=self.private(uri),
        )

    # -- whether suggestions are on -----------------------------------------------------------

    def enabled(self, uri: str, language: str) -> bool:
        """Suggestions are on for `uri` (of `language`): globally, for the language, for its
        workspace."""
        return self._global_on() and self._language_on(language) and self._workspace_on(uri)

    def _global_on(self) -> bool:
        everything = self.toggles.everything
        return self.session.settings.completion.enabled if everything is None else everything

    def _language_on(self, language: str) -> bool:
        language = language.lower()
        if language in self.toggles.languages:
            return self.toggles.languages[language]
        settings = self.session.settings.completion
        if settings.enabled_languages:
            return language in {name.lower() for name in settings.enabled_languages}
        return language not in {name.lower() for name in settings.disabled_languages}

    def _workspace_on(self, uri: str) -> bool:
        """Off when the document's workspace, or a folder above it, was switched off."""
        switched = self.toggles.workspaces
        path = uri_to_path(uri) if uri and switched else None
        if path is None:
            return True
        for folder in (self.workspace_of(uri), *map(str, path.parents)):
            if folder in switched:
                return switched[folder]
        return True

    def workspace_of(self, uri: str) -> str:
        """The workspace root `uri` is under; for a file under none (an editor that opened no
        folder), its folder; without a document, the first root ("" when none)."""
        roots: Sequence[Path] = self.session.workspace.roots
        path = uri_to_path(uri) if uri else None
        if path is None:
            return str(roots[0]) if roots else ""
        for root in roots:
            if path == root or root in path.parents:
                return str(root)
        return str(path.parent)

    def toggle(self, scope: str, uri: str = "") -> dict[str, object]:
        """Flip suggestions for `scope` ("global", "language" or "workspace" of the document
        at `uri`) and say what they are now; the App keeps the state for every window."""
        if scope == "global":
            self.toggles.everything = not self._global_on()
            return {"scope": scope, "enabled": self.toggles.everything}
        if scope == "language":
            language = self._language_at(uri)
            on = self.toggles.languages[language] = not self._language_on(language)
            return {"scope": scope, "enabled": on, "language": language}
        if scope == "workspace":
            root = self.workspace_of(uri)
            if not root:
                raise InvalidRequest(
                    "reaper.toggle workspace needs the textDocument it is about (this editor "
                    "opened no folder)"
                )
            on = self.toggles.workspaces[root] = not self._workspace_on(uri or Path(root).as_uri())
            return {"scope": scope, "enabled": on, "workspace": root}
        raise InvalidRequest(f"reaper.toggle: scope must be one of {', '.join(SCOPES)}")

    def _language_at(self, uri: str) -> str:
        if not uri:
            raise InvalidRequest("reaper.toggle language needs the textDocument it is about")
        doc = self.session.workspace.documents.get(uri)
        path = uri_to_path(uri)
        language = doc.language_id if doc is not None else ""
        return (language or (language_of(path) if path is not None else "plaintext")).lower()

    def status(self) -> dict[str, object]:
        """The switches for `reaper.status`: this session's settings, the App's toggles, and
        whether suggestions are on at all here."""
        settings = self.session.settings.completion
        return {
            "enabled": self._global_on(),
            "disabledLanguages": list(settings.disabled_languages),
            "enabledLanguages": list(settings.enabled_languages),
            "toggles": self.toggles.to_json(),
            "remote": not self.remote_off(),
        }


@dataclass(slots=True)
class _Defaults:
    """A session's view for services built without one (tools, tests): the built-in rules."""

    workspace: Workspace
    settings: Settings = field(default_factory=Settings)
    exclusions: Exclusions = field(default_factory=Exclusions.of)


def default_policy(workspace: Workspace, editor: str = "") -> Policy:
    """The built-in rules (default exclusions, suggestions on) over `workspace`."""
    return Policy(_Defaults(workspace), Toggles(), editor=editor)
