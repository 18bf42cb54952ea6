"""Configuration: defaults, layering, the workspace restrictions, validation and masking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reaper_lsp import config
from reaper_lsp.config import (
    ClaudeSettings,
    LoadedConfig,
    OpenAISettings,
    Settings,
    load,
    mask,
)
from reaper_lsp.core.types import Multiline
from tests.tomlw import dumps


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment whose user config lives in tmp_path (never the real user dir)."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def user_file(env: dict[str, str], text: str) -> Path:
    path = Path(env["XDG_CONFIG_HOME"]) / "reaper-lsp" / "reaper.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def workspace(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    (root / ".reaper.toml").write_text(text, encoding="utf-8")
    return root


def test_no_sources_give_the_built_in_defaults(env: dict[str, str]) -> None:
    loaded = load(env=env)
    assert loaded.settings == Settings()
    assert loaded.errors == [] and loaded.warnings == [] and loaded.sources == {}
    s = loaded.settings
    assert s.completion.providers == ("copilot", "claude", "openai", "ollama")
    assert s.completion.debounce_ms == 25 and s.completion.multiline is Multiline.AUTO
    assert s.chat.providers == ("claude", "openai", "copilot", "ollama")
    assert s.providers.openai.base_url == "https://api.openai.com/v1"
    assert s.http.protocol == "auto" and s.http.tls.min_version == "tls_1_2"
    assert s.http.pool.idle_timeout == 300 and s.cache.max_entries == 2048


def test_user_file_is_found_through_xdg_config_home(env: dict[str, str]) -> None:
    path = user_file(env, "[completion]\ndebounce_ms = 40\n")
    loaded = load(env=env)
    assert loaded.user_file == path
    assert loaded.settings.completion.debounce_ms == 40
    assert loaded.sources == {"completion.debounce_ms": str(path)}


def test_missing_default_user_file_is_not_an_error(env: dict[str, str]) -> None:
    loaded = load(env=env)
    assert loaded.user_file is not None and not loaded.user_file.exists()
    assert loaded.errors == []


def test_reaper_config_names_the_user_file(tmp_path: Path, env: dict[str, str]) -> None:
    user_file(env, "[completion]\ndebounce_ms = 40\n")  # shadowed by REAPER_CONFIG
    chosen = tmp_path / "mine.toml"
    chosen.write_text("[cache]\nttl_seconds = 5\n", encoding="utf-8")
    loaded = load(env={**env, "REAPER_CONFIG": str(chosen)})
    assert loaded.user_file == chosen
    assert loaded.settings.cache.ttl_seconds == 5.0
    assert loaded.settings.completion.debounce_ms == 25


def test_missing_reaper_config_file_is_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    missing = tmp_path / "nope.toml"
    loaded = load(env={**env, "REAPER_CONFIG": str(missing)})
    assert loaded.settings == Settings()
    assert len(loaded.errors) == 1 and str(missing) in loaded.errors[0]
    assert "REAPER_CONFIG" in loaded.errors[0]


def test_each_layer_overrides_the_one_before(tmp_path: Path, env: dict[str, str]) -> None:
    path = user_file(
        env,
        "[completion]\ndebounce_ms = 10\ntimeout_ms = 1000\nhedge_ms = 5\nmax_tokens = 64\n",
    )
    root = workspace(tmp_path, "[completion]\ntimeout_ms = 2000\nhedge_ms = 6\nmax_tokens = 65\n")
    loaded = load(
        env=env,
        workspace_root=root,
        init_options={"completion": {"hedge_ms": 7, "max_tokens": 66}},
        client_settings={"reaper": {"completion": {"max_tokens": 67}}},
    )
    c = loaded.settings.completion
    assert (c.debounce_ms, c.timeout_ms, c.hedge_ms, c.max_tokens) == (10, 2000, 7, 67)
    assert loaded.sources == {
        "completion.debounce_ms": str(path),
        "completion.timeout_ms": str(root / ".reaper.toml"),
        "completion.hedge_ms": "initializationOptions",
        "completion.max_tokens": "didChangeConfiguration",
    }
    assert loaded.errors == [] and loaded.warnings == []


def test_workspace_file_may_change_behaviour(tmp_path: Path, env: dict[str, str]) -> None:
    root = workspace(
        tmp_path,
        '[completion]\ndebounce_ms = 80\nmultiline = "never"\nproviders = ["ollama"]\n'
        "[chat]\nmax_tokens = 100\n",
    )
    loaded = load(env=env, workspace_root=root)
    s = loaded.settings
    assert s.completion.debounce_ms == 80 and s.completion.multiline is Multiline.NEVER
    assert s.completion.providers == ("ollama",)
    assert s.chat.max_tokens == 100
    assert loaded.warnings == [] and loaded.errors == []
    assert loaded.user_settings == Settings()  # what every editor window shares is untouched


@pytest.mark.parametrize("source", ["init_options", "client_settings"])
@pytest.mark.parametrize(
    ("options", "key"),
    [
        (
            {"providers": {"openai": {"base_url": "https://evil.example/v1"}}},
            "providers.openai.base_url",
        ),
        (
            {"providers": {"openai": {"api_key_env": "SOME_ENV_VAR"}}},
            "providers.openai.api_key_env",
        ),
        ({"providers": {"claude": {"api_key": "sk-ant-stolen-key"}}}, "providers.claude.api_key"),
        ({"auth": {"google": {"token_url": "https://evil.example"}}}, "auth.google.token_url"),
        ({"http": {"tls": {"verify_certificates": False}}}, "http.tls.verify_certificates"),
        ({"cache": {"max_entries": 3}}, "cache.max_entries"),
        (
            {"reaper": {"providers": {"copilot": {"github_url": "https://evil.example"}}}},
            "providers.copilot.github_url",
        ),
    ],
)
def test_editor_settings_cannot_touch_endpoints_keys_auth_or_shared_parts(
    env: dict[str, str], source: str, options: dict[str, Any], key: str
) -> None:
    """Editors fill these from project files (Zed's worktree settings, Emacs's .dir-locals.el):
    a cloned repository must not choose where credentials go."""
    path = user_file(env, "")
    loaded = load(env={**env, "SOME_ENV_VAR": "leak"}, **{source: options})  # type: ignore[arg-type]
    assert loaded.settings == Settings() and loaded.user_settings == Settings()
    [warning] = loaded.warnings
    assert key in warning and "cannot be set from the editor's settings" in warning
    assert str(path) in warning  # where to set it instead
    assert "stolen" not in warning and "evil" not in warning


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[providers.openai]\nbase_url = "https://evil.example/v1"\n', "providers.openai.base_url"),
        ('[providers.openai]\napi_key = "sk-stolen"\n', "providers.openai.api_key"),
        ('[providers.claude]\napi_key_env = "OTHER"\n', "providers.claude.api_key_env"),
        ('[auth.google]\nclient_id = "x"\n', "auth.google.client_id"),
        ('[auth.google]\ntoken_url = "https://evil.example"\n', "auth.google.token_url"),
        ("[http.tls]\nverify_certificates = false\n", "http.tls.verify_certificates"),
        ('[http]\nprotocol = "http1"\n', "http.protocol"),
        ('"providers.openai.base_url" = "https://evil.example/v1"\n', "providers.openai.base_url"),
    ],
)
def test_workspace_file_cannot_touch_endpoints_credentials_auth_or_http(
    tmp_path: Path, env: dict[str, str], toml: str, key: str
) -> None:
    root = workspace(tmp_path, toml + "[completion]\ndebounce_ms = 1\n")
    loaded = load(env={**env, "OTHER": "leak"}, workspace_root=root)
    assert loaded.settings.completion.debounce_ms == 1
    assert loaded.settings.providers == Settings().providers
    assert loaded.settings.auth == Settings().auth
    assert loaded.settings.http == Settings().http
    [warning] = loaded.warnings
    assert key in warning and str(root / ".reaper.toml") in warning
    assert "cannot be set from a workspace" in warning
    assert "sk-stolen" not in warning


def test_user_file_may_set_provider_endpoints(env: dict[str, str]) -> None:
    user_file(env, '[providers.openai]\nbase_url = "http://127.0.0.1:9/v1"\nfim = true\n')
    s = load(env=env).settings
    assert s.providers.openai.base_url == "http://127.0.0.1:9/v1" and s.providers.openai.fim


def test_bad_value_is_named_with_key_and_file_and_earlier_value_kept(
    tmp_path: Path, env: dict[str, str]
) -> None:
    user_file(env, "[completion]\ntimeout_ms = 1500\n")
    root = workspace(tmp_path, '[completion]\ntimeout_ms = "fast"\n')
    loaded = load(env=env, workspace_root=root)
    assert loaded.settings.completion.timeout_ms == 1500
    assert loaded.errors == [
        f"{root / '.reaper.toml'}: completion.timeout_ms must be a positive integer, got a string"
    ]


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"completion": {"timeout_ms": 0}}, "completion.timeout_ms"),
        ({"completion": {"timeout_ms": True}}, "completion.timeout_ms"),
        ({"completion": {"timeout_ms": 1.5}}, "completion.timeout_ms"),
        ({"completion": {"debounce_ms": 5001}}, "completion.debounce_ms"),
        ({"completion": {"debounce_ms": -1}}, "completion.debounce_ms"),
        ({"completion": {"hedge_ms": -5}}, "completion.hedge_ms"),
        ({"completion": {"max_prefix_chars": -1}}, "completion.max_prefix_chars"),
        ({"completion": {"multiline": "sometimes"}}, "completion.multiline"),
        ({"completion": {"providers": ["copilot", "gemini"]}}, "completion.providers"),
        ({"completion": {"providers": "copilot"}}, "completion.providers"),
        ({"chat": {"providers": [1]}}, "chat.providers"),
        ({"cache": {"max_entries": 0}}, "cache.max_entries"),
        ({"cache": {"ttl_seconds": float("nan")}}, "cache.ttl_seconds"),
        ({"providers": {"claude": {"backend": "bedrock"}}}, "providers.claude.backend"),
        (
            {"providers": {"openai": {"base_url": "file:///etc/passwd"}}},
            "providers.openai.base_url",
        ),
        ({"providers": {"ollama": {"base_url": ""}}}, "providers.ollama.base_url"),
        ({"providers": {"openai": {"fim": "yes"}}}, "providers.openai.fim"),
        ({"providers": {"openai": {"model": 4}}}, "providers.openai.model"),
        ({"http": {"protocol": "spdy"}}, "http.protocol"),
        ({"http": {"read_timeout": 10**400}}, "http.read_timeout"),
        ({"http": {"tls": {"min_version": "ssl3"}}}, "http.tls.min_version"),
        ({"http": {"pool": 3}}, "http.pool"),
    ],
)
def test_bad_json_values_are_reported_and_dropped(
    env: dict[str, str], options: dict[str, Any], key: str
) -> None:
    """Through initializationOptions where an editor may set the key, else the user file."""
    if key.split(".")[0] in ("completion", "chat"):
        loaded, source = load(env=env, init_options=options), "initializationOptions"
    else:
        source = str(user_file(env, dumps(options)))
        loaded = load(env=env)
    assert loaded.settings == Settings()
    [error] = loaded.errors
    assert error.startswith(f"{source}: {key} must be "), error
    assert loaded.sources == {}


def test_int_is_accepted_where_a_float_is_expected(env: dict[str, str]) -> None:
    user_file(env, "[cache]\nttl_seconds = 12\n")
    loaded = load(env=env)
    assert loaded.settings.cache.ttl_seconds == 12.0
    assert isinstance(loaded.settings.cache.ttl_seconds, float)


def test_empty_vertex_base_url_means_derived_and_is_valid(env: dict[str, str]) -> None:
    user_file(env, '[providers.claude]\nvertex_base_url = ""\nbackend = "vertex"\n')
    loaded = load(env=env)
    assert loaded.errors == []
    assert loaded.settings.providers.claude.backend == "vertex"


def test_local_is_a_valid_provider_name(env: dict[str, str]) -> None:
    loaded = load(env=env, init_options={"completion": {"providers": ["local", "openai"]}})
    assert loaded.settings.completion.providers == ("local", "openai")


def test_unknown_keys_warn_with_key_and_source(env: dict[str, str]) -> None:
    path = user_file(env, "colour = 1\n[completion]\ndebounce = 3\ndebounce_ms = 9\n")
    loaded = load(env=env, client_settings={"completion": {"gemini": {"model": "x"}}})
    assert loaded.settings.completion.debounce_ms == 9
    assert loaded.errors == []
    assert loaded.warnings == [
        f"{path}: unknown key colour (ignored)",
        f"{path}: unknown key completion.debounce (ignored)",
        "didChangeConfiguration: unknown key completion.gemini (ignored)",
    ]


def test_toml_syntax_error_skips_that_file_only(tmp_path: Path, env: dict[str, str]) -> None:
    path = user_file(env, "[completion\ndebounce_ms = 9\n")
    root = workspace(tmp_path, "[completion]\nmax_tokens = 3\n")
    loaded = load(env=env, workspace_root=root)
    [error] = loaded.errors
    assert error.startswith(f"{path}: invalid TOML") and "line 1" in error
    assert loaded.settings.completion.debounce_ms == 25
    assert loaded.settings.completion.max_tokens == 3


def test_json_null_means_not_set(env: dict[str, str]) -> None:
    loaded = load(env=env, init_options={"completion": {"debounce_ms": None}, "chat": None})
    assert loaded.settings == Settings() and loaded.errors == [] and loaded.warnings == []


@pytest.mark.parametrize("source", ["init_options", "client_settings"])
def test_reaper_wrapper_is_accepted_in_json(env: dict[str, str], source: str) -> None:
    options = {"reaper": {"completion": {"debounce_ms": 3}}, "python": {"analysis": 1}}
    loaded = load(env=env, **{source: options})  # type: ignore[arg-type]
    assert loaded.settings.completion.debounce_ms == 3
    assert loaded.warnings == [] and loaded.errors == []


def test_editor_metadata_in_initialization_options_is_ignored(env: dict[str, str]) -> None:
    options = {
        "editorInfo": {"name": "Neovim", "version": "0.11.0"},
        "editorPluginInfo": {"name": "reaper.nvim", "version": "1"},
        "completion": {"debounce_ms": 4},
    }
    loaded = load(env=env, init_options=options)
    assert loaded.settings.completion.debounce_ms == 4
    assert loaded.warnings == [] and loaded.errors == []


def test_api_key_comes_from_the_named_environment_variable() -> None:
    env = {"ANTHROPIC_API_KEY": " sk-ant-1\n", "MY_KEY": "sk-2"}
    assert ClaudeSettings().resolve_api_key(env) == "sk-ant-1"
    assert ClaudeSettings().resolve_api_key({}) == ""
    assert OpenAISettings(api_key_env="MY_KEY").resolve_api_key(env) == "sk-2"
    assert OpenAISettings(api_key="sk-set", api_key_env="MY_KEY").resolve_api_key(env) == "sk-set"
    assert OpenAISettings(api_key_env="").resolve_api_key({"": "x"}) == ""


def test_api_key_env_set_in_user_file_is_used(env: dict[str, str]) -> None:
    user_file(env, '[providers.openai]\napi_key_env = "WORK_OPENAI"\n')
    loaded = load(env={**env, "WORK_OPENAI": "sk-work"})
    assert loaded.settings.providers.openai.resolve_api_key({"WORK_OPENAI": "sk-work"}) == "sk-work"


def test_mask_never_shows_the_tail() -> None:
    assert mask("") == ""
    assert mask("sk-proj-abcdefghijklmnop") == "sk-…(redacted)"
    assert mask("abcd") == "a…(redacted)"
    assert mask("ab") == "…(redacted)"


def test_describe_lists_every_key_with_source_and_masks_secrets(env: dict[str, str]) -> None:
    path = user_file(
        env,
        '[providers.openai]\napi_key = "sk-verysecretkey123"\n'
        '[auth.google]\nclient_secret = "GOCSPX-topsecretvalue"\n',
    )
    loaded = load(env=env, init_options={"completion": {"providers": ["ollama"]}})
    rows = {key: (value, source) for key, value, source in loaded.describe()}
    assert len(rows) == len(loaded.describe())
    assert rows["providers.openai.api_key"] == ("sk-…(redacted)", str(path))
    assert rows["auth.google.client_secret"] == ("GOC…(redacted)", str(path))
    assert rows["providers.claude.api_key"] == ('""', "default")
    assert rows["auth.google.token_url"] == ('"https://oauth2.googleapis.com/token"', "default")
    assert rows["completion.providers"] == ('["ollama"]', "initializationOptions")
    assert rows["completion.multiline"] == ('"auto"', "default")
    assert rows["http.tls.verify_certificates"] == ("true", "default")
    assert rows["http.pool.idle_timeout"] == ("300.0", "default")
    text = repr(loaded.describe())
    assert "verysecret" not in text and "topsecret" not in text


def test_secret_in_a_bad_value_is_masked(env: dict[str, str]) -> None:
    user_file(env, '[providers.openai]\napi_key = ["sk-abcdefgh"]\n')
    [error] = load(env=env).errors
    assert "providers.openai.api_key" in error and "abcdefgh" not in error
    options = {"providers": {"openai": {"api_key": "sk-abcdefgh"}}}
    [warning] = load(env=env, init_options=options).warnings
    assert "providers.openai.api_key" in warning and "abcdefgh" not in warning


def test_describe_covers_every_settings_field() -> None:
    keys = [key for key, _, _ in LoadedConfig().describe()]
    assert len(keys) == len(set(keys))
    assert "providers.copilot.integration_id" in keys and "http.quic.enable_0rtt" in keys
    assert all(not key.startswith("reaper.") for key in keys)


# Real key names make the garbage reach deep into the schema instead of bouncing off the top.
KEYS = sorted(
    {part for key in config.schema().leaves for part in key.split(".")} | {"reaper", "editorInfo"}
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["copilot", "auto", "http1", "https://x.example", "tls_1_3", "vertex"])
)
json_ish = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=json_ish, change=json_ish)
def test_garbage_json_never_raises(env: dict[str, str], options: Any, change: Any) -> None:
    loaded = load(env=env, init_options=options, client_settings=change)
    assert isinstance(loaded.settings, Settings)
    loaded.describe()
    for message in loaded.errors + loaded.warnings:
        assert message.startswith(("initializationOptions: ", "didChangeConfiguration: "))


def test_schema_matches_the_dataclasses() -> None:
    # The generic walker must find every nested table, else their keys would read as unknown.
    assert set(config.schema().sections) == {
        "completion", "chat", "cache", "providers", "providers.copilot", "providers.claude",
        "providers.openai", "providers.ollama", "providers.llamacpp", "auth", "auth.google",
        "http", "http.pool", "http.quic", "http.tls", "daemon", "privacy",
    }  # fmt: skip


def test_range_errors_state_the_range(env: dict[str, str]) -> None:
    loaded = load(env=env, init_options={"completion": {"debounce_ms": 9000}})
    assert loaded.errors == [
        "initializationOptions: completion.debounce_ms must be a non-negative integer up to 5000,"
        " got 9000"
    ]


SECRET = "sk-proj-Zq8rT2wYp4LmN6vB1xC3kJ5hG7fD9sA0"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("providers.openai", SECRET, "a table, got a string"),
        ("providers", SECRET, "a table, got a string"),
        ("reaper", SECRET, "a table, got a string"),
        ("http.tls", [SECRET], "a table, got a list"),
        ("providers.openai.model", [SECRET], "a string, got a list"),
        ("providers.openai.fim", SECRET, "true or false, got a string"),
        ("providers.openai.base_url", SECRET, "an http(s) URL, got a string"),
        ("providers.openai.api_key", {"v": SECRET}, "a string, got a table"),
        ("completion.multiline", SECRET, "one of "),
        ("completion.timeout_ms", SECRET, "a positive integer, got a string"),
        ("completion.providers", [SECRET], "a list of provider names"),
    ],
)
def test_type_errors_name_the_key_and_type_never_the_value(
    env: dict[str, str], key: str, value: object, expected: str
) -> None:
    for part in reversed(key.split(".")):
        value = {part: value}
    if key.split(".")[0] in ("completion", "chat", "reaper"):
        [error] = load(env=env, init_options=value).errors
    else:
        assert isinstance(value, dict)
        user_file(env, dumps(value))
        [error] = load(env=env).errors
    assert f"{key} must be {expected}" in error
    assert SECRET[8:16] not in error and "sk-" not in error


def test_a_secret_in_place_of_a_table_in_a_file_is_not_echoed(env: dict[str, str]) -> None:
    path = user_file(env, f'[providers]\nopenai = "{SECRET}"\n')
    loaded = load(env=env)
    assert loaded.errors == [f"{path}: providers.openai must be a table, got a string"]
    assert SECRET[8:] not in " ".join(loaded.errors + loaded.warnings)


@pytest.mark.parametrize(
    "line,kind",
    [
        ("api_key = 123456789012345", "a number"),
        ("api_key = 4242", "a number"),
        ("api_key = 3.25", "a number"),
        ("api_key = true", "a boolean"),
    ],
)
def test_a_secret_keys_number_or_boolean_is_shown_by_its_kind_only(
    env: dict[str, str], line: str, kind: str
) -> None:
    user_file(env, f"[providers.openai]\n{line}\n")
    [error] = load(env=env).errors
    assert error.endswith(f"providers.openai.api_key must be a string, got {kind}")


def test_a_non_secret_number_is_still_quoted(env: dict[str, str]) -> None:
    user_file(env, "[completion]\ndebounce_ms = 9000\n")
    [error] = load(env=env).errors
    assert error.endswith("got 9000")


def test_a_bad_provider_name_is_named_with_its_place(env: dict[str, str]) -> None:
    options = {"completion": {"providers": ["openai", "offline"]}}
    [error] = load(env=env, init_options=options).errors
    assert error.endswith(
        "completion.providers must be a list of provider names (copilot, claude, openai, "
        'ollama, llamacpp, local), but entry 2 ("offline") is not one'
    )


@pytest.mark.parametrize("entry", [SECRET, "sk-short", 5, {"name": "openai"}])
def test_a_bad_provider_entry_that_is_no_word_is_shown_by_its_kind(
    env: dict[str, str], entry: object
) -> None:
    [error] = load(env=env, init_options={"chat": {"providers": ["local", entry]}}).errors
    assert "but entry 2 (" in error and "sk-" not in error and "openai" not in error.split(")")[-2]
