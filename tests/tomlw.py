"""Settings as a TOML user file, for tests: endpoints, keys and everything shared by every
editor window may come only from the user's own config file, never from an editor's
initializationOptions, so tests that point the server at a fake write one."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SESSION_SECTIONS = ("completion", "chat", "privacy")
"""What an editor may still send as initializationOptions (the rest is the user file's)."""


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string reads JSON's escapes the same way
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def dumps(table: Mapping[str, Any], prefix: str = "") -> str:
    """`table` as TOML (nested tables as [a.b] sections; None values left out)."""
    scalars = [
        f"{k} = {_value(v)}"
        for k, v in table.items()
        if v is not None and not isinstance(v, Mapping)
    ]
    out = ""
    if scalars:
        out += (f"[{prefix}]\n" if prefix else "") + "\n".join(scalars) + "\n"
    for key, value in table.items():
        if isinstance(value, Mapping):
            out += dumps(value, f"{prefix}.{key}" if prefix else key)
    return out


def split(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what an editor may send, what must be in the user file)."""
    session = {k: v for k, v in options.items() if k in SESSION_SECTIONS}
    user = {k: v for k, v in options.items() if k not in SESSION_SECTIONS}
    return session, user


def write_user_config(home: Path, table: Mapping[str, Any]) -> Path:
    """The user config file of an isolated `home` (XDG_CONFIG_HOME = home/config)."""
    path = home / "config" / "reaper-lsp" / "reaper.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(table), encoding="utf-8")
    return path
