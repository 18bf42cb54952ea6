"""The editor configurations under editors/ parse, start the server the way the CLI accepts,
and pass settings the config loader accepts. (Neovim is run for real in tests/e2e.)"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from reaper_lsp import config
from reaper_lsp.cli import build_parser

EDITORS = Path(__file__).resolve().parents[2] / "editors"


def _json_with_comments(text: str) -> object:
    return json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE))


def _command_is_accepted(argv: list[str]) -> None:
    assert argv[0] == "reaper-lsp"
    build_parser().parse_args(argv[1:])  # raises SystemExit on an unknown option


def test_helix_languages_toml() -> None:
    data = tomllib.loads((EDITORS / "helix" / "languages.toml").read_text(encoding="utf-8"))
    server = data["language-server"]["reaper"]
    _command_is_accepted([server["command"], *server.get("args", [])])
    for language in data["language"]:
        assert language["language-servers"][-1] == "reaper"
    loaded = config.load(env={}, init_options=server.get("config", {}))
    assert not loaded.errors


def test_zed_extension_and_settings() -> None:
    extension = tomllib.loads((EDITORS / "zed" / "extension.toml").read_text(encoding="utf-8"))
    assert "reaper-lsp" in extension["language_servers"]
    cargo = tomllib.loads((EDITORS / "zed" / "Cargo.toml").read_text(encoding="utf-8"))
    assert cargo["lib"]["crate-type"] == ["cdylib"]
    source = (EDITORS / "zed" / "src" / "lib.rs").read_text(encoding="utf-8")
    assert '"reaper-lsp"' in source
    settings = _json_with_comments((EDITORS / "zed" / "settings.json").read_text("utf-8"))
    assert isinstance(settings, dict)
    options = settings["lsp"]["reaper-lsp"]["initialization_options"]
    loaded = config.load(env={}, init_options=options)
    assert not loaded.errors and not loaded.warnings


def test_neovim_config_starts_the_server_with_no_arguments() -> None:
    text = (EDITORS / "neovim" / "reaper.lua").read_text(encoding="utf-8")
    assert re.search(r"cmd\s*=\s*\{\s*'reaper-lsp'\s*\}", text)
    _command_is_accepted(["reaper-lsp"])


def test_vscode_extension_defaults_start_the_server_with_accepted_arguments() -> None:
    manifest = json.loads((EDITORS / "vscode" / "package.json").read_text(encoding="utf-8"))
    settings = manifest["contributes"]["configuration"]["properties"]
    command = settings["reaper.serverPath"]["default"]
    _command_is_accepted([command, *settings["reaper.serverArgs"]["default"]])
    loaded = config.load(env={}, init_options=settings["reaper.settings"]["default"])
    assert not loaded.errors and not loaded.warnings
