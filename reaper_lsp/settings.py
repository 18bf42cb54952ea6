"""The settings' typed defaults: one frozen dataclass per section of `reaper.toml`. Loading,
merging and validating them is `config.py`'s job."""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reaper_lsp.core.scrub import DEFAULT_EXCLUDE
from reaper_lsp.core.types import Multiline

PROVIDER_NAMES = ("copilot", "claude", "openai", "ollama", "llamacpp", "local")
INIT_OPTIONS = "initializationOptions"
CLIENT_SETTINGS = "didChangeConfiguration"
DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class CompletionSettings:
    providers: tuple[str, ...] = ("copilot", "claude", "openai", "ollama")
    debounce_ms: int = 25
    prefetch: bool = True
    timeout_ms: int = 4000
    hedge_ms: int = 0
    max_prefix_chars: int = 8000
    max_suffix_chars: int = 2000
    max_context_chars: int = 4000
    """Snippets of other open files, imported definitions and distant parts of the current
    file shown with the prompt, after the prefix and suffix budgets (0: none)."""
    max_tokens: int = 128
    multiline: Multiline = Multiline.AUTO
    enabled: bool = True
    """False: no suggestions at all (`reaper.toggle` turns them back on for every window)."""
    disabled_languages: tuple[str, ...] = ()
    """Language ids never completed (e.g. "markdown")."""
    enabled_languages: tuple[str, ...] = ()
    """When set, the only language ids completed (an allow-list: `disabled_languages` is then
    not consulted)."""


@dataclass(frozen=True, slots=True)
class ChatSettings:
    providers: tuple[str, ...] = ("claude", "openai", "copilot", "ollama")
    max_tokens: int = 2048
    marker: str = ">>>"
    """A comment starting with this is an in-buffer chat prompt (a code action answers it)."""
    history_chars: int = 24_000
    """How much of a conversation's earlier turns is sent again (oldest dropped first)."""


@dataclass(frozen=True, slots=True)
class CacheSettings:
    ttl_seconds: float = 300.0
    max_entries: int = 2048


@dataclass(frozen=True, slots=True)
class CopilotSettings:
    github_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"
    model: str = ""
    editor_version: str = ""
    """Empty: derived from the client's `clientInfo`."""
    editor_plugin_version: str = ""
    integration_id: str = "vscode-chat"
    user_agent: str = ""
    daily_token_budget: int = 0
    """Tokens a day this provider may spend (0: no limit); spent, it is skipped until midnight."""


class _ApiKey:
    """For the settings of a provider keyed by `api_key`, or the variable `api_key_env` names."""

    __slots__ = ()
    api_key: str
    api_key_env: str

    def resolve_api_key(self, env: Mapping[str, str]) -> str:
        """`api_key` if set, else the variable named by `api_key_env`, else ""."""
        if self.api_key:
            return self.api_key
        # Keys pasted into shell profiles often carry stray whitespace that upstream APIs reject.
        return env.get(self.api_key_env, "").strip() if self.api_key_env else ""


@dataclass(frozen=True, slots=True)
class ClaudeSettings(_ApiKey):
    backend: str = "anthropic"
    base_url: str = "https://api.anthropic.com/v1"
    api_key_env: str = "ANTHROPIC_API_KEY"
    api_key: str = ""
    model: str = "claude-haiku-4-5"
    chat_model: str = "claude-sonnet-4-5"
    vertex_project: str = ""
    vertex_region: str = "us-east5"
    vertex_base_url: str = ""
    """Empty: derived from `vertex_region`; set only to point tests at a fake."""
    daily_token_budget: int = 0
    """Tokens a day this provider may spend (0: no limit); spent, it is skipped until midnight."""

    def vertex_api(self) -> str:
        """The Vertex AI endpoint base for `vertex_region` (or `vertex_base_url` when set)."""
        if self.vertex_base_url:
            return self.vertex_base_url.rstrip("/")
        if self.vertex_region == "global":
            return "https://aiplatform.googleapis.com/v1"
        if self.vertex_region in ("us", "eu"):
            return f"https://aiplatform.{self.vertex_region}.rep.googleapis.com/v1"
        return f"https://{self.vertex_region}-aiplatform.googleapis.com/v1"


@dataclass(frozen=True, slots=True)
class OpenAISettings(_ApiKey):
    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = "OPENAI_API_KEY"
    api_key: str = ""
    model: str = "gpt-4o-mini"
    chat_model: str = "gpt-4o"
    fim: bool = False
    fim_model: str = "gpt-3.5-turbo-instruct"
    daily_token_budget: int = 0
    """Tokens a day this provider may spend (0: no limit); spent, it is skipped until midnight."""


@dataclass(frozen=True, slots=True)
class OllamaSettings:
    base_url: str = "http://localhost:11434"
    model: str = "qwen2.5-coder:1.5b"
    chat_model: str = "qwen2.5-coder:7b"
    keep_alive: str = "30m"
    """How long Ollama keeps the model loaded after a request (a Go duration, "-1" = always)."""
    think: bool = False
    """Let thinking chat models think (shown as "thinking…"); completions never think."""
    daily_token_budget: int = 0
    """Tokens a day this provider may spend (0: no limit); spent, it is skipped until midnight."""


@dataclass(frozen=True, slots=True)
class LlamaCppSettings(_ApiKey):
    base_url: str = "http://127.0.0.1:8080"
    api_key_env: str = "LLAMA_API_KEY"
    api_key: str = ""
    model: str = ""
    """Empty: whatever model llama-server was started with."""
    chat_model: str = ""
    daily_token_budget: int = 0
    """Tokens a day this provider may spend (0: no limit); spent, it is skipped until midnight."""


@dataclass(frozen=True, slots=True)
class ProvidersSettings:
    copilot: CopilotSettings = field(default_factory=CopilotSettings)
    claude: ClaudeSettings = field(default_factory=ClaudeSettings)
    openai: OpenAISettings = field(default_factory=OpenAISettings)
    ollama: OllamaSettings = field(default_factory=OllamaSettings)
    llamacpp: LlamaCppSettings = field(default_factory=LlamaCppSettings)


@dataclass(frozen=True, slots=True)
class GoogleAuthSettings:
    client_id: str = ""
    client_secret: str = ""
    token_url: str = "https://oauth2.googleapis.com/token"
    auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    google: GoogleAuthSettings = field(default_factory=GoogleAuthSettings)


@dataclass(frozen=True, slots=True)
class PoolSettings:
    max_per_host: int = 10
    max_total: int = 50
    idle_timeout: float = 300.0
    """Seconds."""


@dataclass(frozen=True, slots=True)
class QuicSettings:
    enable_0rtt: bool = True
    max_idle_timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class TlsSettings:
    verify_certificates: bool = True
    min_version: str = "tls_1_2"
    ca_file: str = ""


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Timeouts and backoff in milliseconds, the units of the original design."""

    protocol: str = "auto"
    fallback: str = "http1"
    connect_timeout: int = 10000
    read_timeout: int = 120000
    write_timeout: int = 30000
    max_retries: int = 3
    retry_backoff: int = 100
    pool: PoolSettings = field(default_factory=PoolSettings)
    quic: QuicSettings = field(default_factory=QuicSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    """What never leaves the machine. A workspace file or the editor's settings may add
    patterns and turn remote providers off for their project, never take anything back: the
    session's rules are the union (and the stricter) of the user's and its own."""

    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    """Files (globs on the base name, or on the path relative to the workspace root when the
    pattern has a `/`) never sent to a remote provider in any role."""
    exclude_extra: tuple[str, ...] = ()
    excluded_local: bool = True
    """The offline engine may still complete excluded files (it sends nothing anywhere)."""
    remote: bool = True
    """False: no remote provider for this project (the offline engine answers)."""


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """`reaper-lsp` (what editors start) forwards to one per-user daemon unless disabled."""

    enabled: bool = True
    idle_timeout: float = 600.0
    """Seconds without sessions before the daemon exits."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration; `Settings()` is the built-in default."""

    completion: CompletionSettings = field(default_factory=CompletionSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    providers: ProvidersSettings = field(default_factory=ProvidersSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)


def mask(secret: str) -> str:
    """A secret fit for logs and displays: at most its first 3 characters, never its tail."""
    if not secret:
        return ""
    # Short secrets show less, so that the visible part never gives away a real share of them.
    return secret[: min(3, len(secret) // 4)] + "…(redacted)"


def is_secret(name: str) -> bool:
    """Whether a key (last dotted part) holds a credential."""
    # `token_url` names an endpoint, not a token; everything else with "token" is treated as one.
    return name in ("api_key", "client_secret") or ("token" in name and not name.endswith("_url"))


# -- the shape of the settings, for loading them (config.py) ----------------------------


@dataclass(frozen=True, slots=True)
class Leaf:
    """One settable key: its type hint and built-in default."""

    hint: object
    default: object


@dataclass(frozen=True, slots=True)
class Schema:
    leaves: dict[str, Leaf]
    sections: dict[str, type[Any]]


@functools.cache
def schema() -> Schema:
    """Every settable key of `Settings`, found by walking the dataclass tree."""
    schema = Schema({}, {})

    def walk(cls: type[Any], prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        default = cls()
        for f in dataclasses.fields(cls):
            dotted, hint = prefix + f.name, hints[f.name]
            if isinstance(hint, type) and dataclasses.is_dataclass(hint):
                schema.sections[dotted] = hint
                walk(hint, dotted + ".")
            else:
                schema.leaves[dotted] = Leaf(hint, getattr(default, f.name))

    walk(Settings, "")
    return schema


T = TypeVar("T")


def build(cls: type[T], values: Mapping[str, object], prefix: str = "") -> T:
    """`cls` (a settings section) from dotted values; unset keys keep their defaults."""
    sections = schema().sections
    kwargs: dict[str, object] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        dotted = prefix + f.name
        if dotted in sections:
            kwargs[f.name] = build(sections[dotted], values, dotted + ".")
        elif dotted in values:
            kwargs[f.name] = values[dotted]
    return cls(**kwargs)
