"""Settings for reaper-lsp: typed defaults, and loading, merging and validating every source once.

Sources, later wins: built-in defaults → user file → workspace `.reaper.toml` →
LSP `initializationOptions` → `workspace/didChangeConfiguration`. The user file (and the
environment) alone decide endpoints, keys, key variable names, auth, HTTP and everything every
editor window shares; the later layers come with cloned repositories (a workspace file; editors
fill their LSP settings from project files: Zed's worktree settings, Emacs's .dir-locals.el) and
may only tune what is theirs: `completion` and `chat`. Nothing here raises on bad input: a bad
value is reported (naming the dotted key and its source) and dropped, so the value of the
earlier layer stays and the server keeps working with it.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from reaper_lsp.core.types import Multiline
from reaper_lsp.settings import (
    CLIENT_SETTINGS,
    DEFAULT,
    INIT_OPTIONS,
    PROVIDER_NAMES,
    AuthSettings,
    CacheSettings,
    ChatSettings,
    ClaudeSettings,
    CompletionSettings,
    CopilotSettings,
    GoogleAuthSettings,
    HttpSettings,
    Leaf,
    LlamaCppSettings,
    OllamaSettings,
    OpenAISettings,
    PoolSettings,
    ProvidersSettings,
    QuicSettings,
    Settings,
    TlsSettings,
    build,
    is_secret,
    mask,
    schema,
)

__all__ = [
    "CLIENT_SETTINGS",
    "DEFAULT",
    "INIT_OPTIONS",
    "PROVIDER_NAMES",
    "AuthSettings",
    "CacheSettings",
    "ChatSettings",
    "ClaudeSettings",
    "CompletionSettings",
    "CopilotSettings",
    "GoogleAuthSettings",
    "HttpSettings",
    "LlamaCppSettings",
    "LoadedConfig",
    "OllamaSettings",
    "OpenAISettings",
    "PoolSettings",
    "ProvidersSettings",
    "QuicSettings",
    "Settings",
    "TlsSettings",
    "is_secret",
    "load",
    "mask",
    "user_config_path",
]


@dataclass
class LoadedConfig:
    """The settings in force, what went wrong while reading them, and where each value came from."""

    settings: Settings = field(default_factory=Settings)
    """Every layer: what one editor session works with."""
    user_settings: Settings = field(default_factory=Settings)
    """Defaults and the user file only: what the App shares between editor sessions (the
    sections only the user file may set are the same in both)."""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    """Dotted key → source of its value, for every key some layer set."""
    user_file: Path | None = None
    """The user file consulted, even if it does not exist."""

    def describe(self) -> list[tuple[str, str, str]]:
        """(dotted key, display value with secrets masked, source) for every key."""
        rows = []
        for dotted in schema().leaves:
            value = functools.reduce(getattr, dotted.split("."), self.settings)
            rows.append((dotted, _display(dotted, value), self.sources.get(dotted, DEFAULT)))
        return rows


# -- validation rules -----------------------------------------------------------------------------
# Keyed by field name or dotted key rather than written per key, so that adding a setting to a
# dataclass above is usually all it takes.

# Workspace files and editor settings come with cloned repositories: they may tune one session's
# behaviour, never touch endpoints, credentials, auth, TLS, or what every session shares.
_SESSION_SECTIONS = frozenset({"completion", "chat", "privacy"})
# Editors put their own metadata into initializationOptions (the Copilot LSP convention).
_EDITOR_KEYS = frozenset({"editorInfo", "editorPluginInfo"})
# ...and the Copilot plugins send every server Copilot's own settings (docs/copilot-protocol.md):
# not ours to read, nor to warn about.
_COPILOT_KEYS = frozenset({"telemetry", "advanced", "github", "github-enterprise",
                           "enableAutoCompletions", "disabledLanguages", "nextEditSuggestions",
                           "copilotIntegrationId"})  # fmt: skip
_COPILOT_HTTP = frozenset({"proxy", "proxyStrictSSL", "proxyKerberosServicePrincipal"})
_CHOICES: dict[str, tuple[str, ...]] = {
    "providers.claude.backend": ("anthropic", "vertex"),
    "http.protocol": ("auto", "http3", "http2", "http1"),
    "http.fallback": ("http2", "http1"),
    "http.tls.min_version": ("tls_1_2", "tls_1_3"),
}
_POSITIVE = frozenset(
    {
        "timeout_ms",
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "max_idle_timeout",
        "max_entries",
        "max_tokens",
        "max_per_host",
        "max_total",
    }
)
_MAXIMUM: dict[str, int] = {"debounce_ms": 5000}
# Privacy only tightens from layer to layer: a later source (a cloned repository's workspace
# file, editor settings filled from project files) adds exclusions and may turn remote providers
# off, never back on.
_TIGHTENING: dict[str, Callable[[Any, Any], Any]] = {
    "privacy.exclude": lambda old, new: tuple(dict.fromkeys((*old, *new))),
    "privacy.exclude_extra": lambda old, new: tuple(dict.fromkeys((*old, *new))),
    "privacy.remote": lambda old, new: old and new,
    "privacy.excluded_local": lambda old, new: old and new,
}
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,11}")  # a name, never a key's shape
# Absurd numbers would overflow later (milliseconds / 1000 as float, timer arithmetic).
_CAP = 1_000_000_000


class _Invalid(Exception):
    """A value that does not fit its key; the message says what would ("a positive integer"),
    and `problem`, when set, what is wrong with the value in place of quoting it."""

    def __init__(self, expected: str, problem: str = "") -> None:
        super().__init__(expected)
        self.problem = problem


def _number(name: str, hint: object, value: object) -> int | float:
    high = _MAXIMUM.get(name, _CAP)
    kind = "integer" if hint is int else "number"
    what = f"a positive {kind}" if name in _POSITIVE else f"a non-negative {kind}"
    if name in _MAXIMUM:
        what += f" up to {high}"
    # bool is an int subclass, but `timeout_ms = true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int if hint is int else int | float):
        raise _Invalid(what)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(what)
    if value > high:
        raise _Invalid(what if name in _MAXIMUM else f"{what} up to {high}")
    if value <= 0 if name in _POSITIVE else value < 0:
        raise _Invalid(what)
    return float(value) if hint is float else value


def _check(dotted: str, leaf: Leaf, value: object) -> object:
    """`value` converted to the key's type, or `_Invalid` saying what was expected."""
    name, hint = dotted.rpartition(".")[2], leaf.hint
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Invalid("true or false")
    if hint is int or hint is float:
        return _number(name, hint, value)
    if hint is Multiline:
        choices = tuple(m.value for m in Multiline)
        if isinstance(value, str) and value in choices:
            return Multiline(value)
        raise _Invalid(_one_of(choices))
    if hint == tuple[str, ...] and name == "providers":
        expected = f"a list of provider names ({', '.join(PROVIDER_NAMES)})"
        if not isinstance(value, list | tuple):
            raise _Invalid(expected)
        for number, entry in enumerate(value, 1):
            if entry not in PROVIDER_NAMES:
                raise _Invalid(expected, f"but entry {number} ({_entry(entry)}) is not one")
        return tuple(dict.fromkeys(value))  # a repeated name would only be tried twice
    if hint == tuple[str, ...]:
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(dict.fromkeys(value))
        raise _Invalid("a list of strings")
    choices = _CHOICES.get(dotted, ())
    if choices:
        if value in choices:
            return value
        raise _Invalid(_one_of(choices))
    if not isinstance(value, str):
        raise _Invalid("an http(s) URL" if name.endswith("_url") else "a string")
    if name.endswith("_url") and not _is_url(value) and not (value == "" == leaf.default):
        raise _Invalid("an http(s) URL")
    return value


def _entry(value: object) -> str:
    """A list entry as a message may quote it: a short plain word (a misspelt or unknown name)
    as such; anything else only by its kind, since it may be a key pasted in the wrong place."""
    if isinstance(value, str) and _WORD.fullmatch(value):
        return json.dumps(value)
    return _show(value)


def _one_of(choices: tuple[str, ...]) -> str:
    return "one of " + ", ".join(json.dumps(c) for c in choices)


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _show(value: object, dotted: str = "") -> str:
    """A bad value as a message quotes it: a number or a boolean as such (the useful part of a
    range error), anything else only by its kind. A string or a table may be a key pasted in
    the wrong place (`providers.openai = "sk-…"`), and messages are shown and logged; so is a
    secret key's value of any type (`api_key = 123456789012345` is a key too)."""
    secret = is_secret(dotted.rpartition(".")[2])
    if isinstance(value, bool):
        return "a boolean" if secret else "true" if value else "false"
    if isinstance(value, int | float):
        text = json.dumps(value)
        if secret:
            return "a number"
        return text if len(text) <= 20 else f"a {len(text)}-digit number"
    kinds = ((str, "a string"), (Mapping, "a table"), (list | tuple, "a list"))
    return next((kind for cls, kind in kinds if isinstance(value, cls)), "another type")


def _display(dotted: str, value: object) -> str:
    if is_secret(dotted.rpartition(".")[2]) and isinstance(value, str) and value:
        return mask(value)
    return json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)


def _key_name(key: object) -> str:
    return key if isinstance(key, str) else f"<{type(key).__name__} key>"


# -- layers ---------------------------------------------------------------------------------------


def _leaf_keys(dotted: str, value: object) -> list[str]:
    if isinstance(value, Mapping):
        return [k for sub, v in value.items() for k in _leaf_keys(f"{dotted}.{_key_name(sub)}", v)]
    return [dotted]


def _apply(
    loaded: LoadedConfig,
    values: dict[str, object],
    table: Mapping[Any, object],
    source: str,
    *,
    restricted: str = "",
    prefix: str = "",
) -> None:
    """Validate one layer's `table` and lay its good values over `values`. `restricted`: the
    layer may set only the session's own sections (the words say what the layer is)."""
    known = schema()
    for key, value in table.items():
        dotted = prefix + _key_name(key)
        if value is None:
            continue  # JSON null is how editors say "not set", not a value
        if dotted not in known.leaves and dotted not in known.sections:
            loaded.warnings.append(f"{source}: unknown key {dotted} (ignored)")
        elif restricted and dotted.split(".")[0] not in _SESSION_SECTIONS:
            for leaf in _leaf_keys(dotted, value):
                loaded.warnings.append(
                    f"{source}: {leaf} cannot be set from {restricted} (ignored); "
                    f"set it in your user config file {loaded.user_file or ''}".rstrip()
                )
        elif dotted in known.sections:
            if isinstance(value, Mapping):
                _apply(loaded, values, value, source, restricted=restricted, prefix=dotted + ".")
            else:
                loaded.errors.append(f"{source}: {dotted} must be a table, got {_show(value)}")
        else:
            try:
                checked = _check(dotted, known.leaves[dotted], value)
                tighten = _TIGHTENING.get(dotted)
                if tighten is not None:
                    checked = tighten(values.get(dotted, known.leaves[dotted].default), checked)
                values[dotted] = checked
            except _Invalid as exc:
                shown = exc.problem or f"got {_show(value, dotted)}"
                loaded.errors.append(f"{source}: {dotted} must be {exc}, {shown}")
            else:
                loaded.sources[dotted] = source


def _unwrap(loaded: LoadedConfig, options: object, source: str) -> Mapping[Any, object]:
    """The `reaper` section of a JSON source, which clients send wrapped or bare."""
    if not isinstance(options, Mapping):
        return {}
    if "reaper" in options:
        inner = options["reaper"]
        if inner is None or isinstance(inner, Mapping):
            return inner or {}
        loaded.errors.append(f"{source}: reaper must be a table, got {_show(inner)}")
        return {}
    return {k: v for k, v in options.items() if k not in _EDITOR_KEYS and not _copilots(k, v)}


def _copilots(key: object, value: object) -> bool:
    """A key of Copilot's settings (its `http` holds proxy keys only; ours never does)."""
    if key == "http":
        return isinstance(value, Mapping) and set(value) <= _COPILOT_HTTP
    return key in _COPILOT_KEYS


MAX_CONFIG_BYTES = 1024 * 1024


def _read_toml(loaded: LoadedConfig, path: Path) -> dict[str, Any] | None:
    """The parsed file, or None if it is absent or unreadable (the latter reported)."""
    from reaper_lsp.workspace import read_regular_file

    if not path.exists():
        return None
    data = read_regular_file(path, MAX_CONFIG_BYTES + 1)
    if data is None:
        loaded.errors.append(f"{path}: not a readable regular file, ignored")
        return None
    if len(data) > MAX_CONFIG_BYTES:
        loaded.errors.append(f"{path}: larger than {MAX_CONFIG_BYTES} bytes, ignored")
        return None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        loaded.errors.append(f"{path}: invalid TOML, file ignored: {exc}")
    except UnicodeDecodeError:
        loaded.errors.append(f"{path}: not UTF-8, file ignored")
    except OSError as exc:
        loaded.errors.append(f"{path}: cannot read, file ignored: {exc.strerror or exc}")
    return None


def user_config_path(env: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The user file and whether the user named it explicitly (`$REAPER_CONFIG`)."""
    env = os.environ if env is None else env
    explicit = env.get("REAPER_CONFIG", "").strip()
    if explicit:
        return Path(explicit).expanduser(), True
    # platformdirs reads os.environ; honouring `env` here keeps load(env=...) hermetic.
    xdg = env.get("XDG_CONFIG_HOME", "").strip()
    if xdg and os.path.isabs(xdg) and sys.platform not in ("win32", "darwin"):
        return Path(xdg) / "reaper-lsp" / "reaper.toml", False
    return Path(platformdirs.user_config_dir("reaper-lsp")) / "reaper.toml", False


def load(
    *,
    env: Mapping[str, str] | None = None,
    init_options: Mapping[str, object] | None = None,
    client_settings: Mapping[str, object] | None = None,
    workspace_root: Path | None = None,
) -> LoadedConfig:
    """Read every source, later wins; never raises for bad input (see `LoadedConfig.errors`)."""
    env = os.environ if env is None else env
    user_file, explicit = user_config_path(env)
    loaded = LoadedConfig(user_file=user_file)
    values: dict[str, object] = {}

    if explicit and not user_file.exists():
        loaded.errors.append(f"{user_file}: not found (named by REAPER_CONFIG)")
    table = _read_toml(loaded, user_file)
    if table is not None:
        _apply(loaded, values, table, str(user_file))
    loaded.user_settings = build(Settings, values)
    if workspace_root is not None:
        path = workspace_root / ".reaper.toml"
        table = _read_toml(loaded, path)
        if table is not None:
            _apply(loaded, values, table, str(path), restricted="a workspace file")
    editor = "the editor's settings"
    for source, options in ((INIT_OPTIONS, init_options), (CLIENT_SETTINGS, client_settings)):
        _apply(loaded, values, _unwrap(loaded, options, source), source, restricted=editor)

    loaded.settings = build(Settings, values)
    return loaded
