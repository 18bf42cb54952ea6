"""Every remote back end by name: adding one is its module (with a `build(parts)`) plus one line
here. The offline engine (`local`) is not here: it reads one editor session's documents, so each
session builds its own."""

from __future__ import annotations

from collections.abc import Callable

from reaper_lsp.providers import claude, copilot, llamacpp, ollama, openai
from reaper_lsp.providers.base import Parts, Provider
from reaper_lsp.providers.http import HTTPProvider

REGISTRY: dict[str, Callable[[Parts], Provider]] = {
    "copilot": copilot.build,
    "claude": claude.build,
    "openai": openai.build,
    "ollama": ollama.build,
    "llamacpp": llamacpp.build,
}


def build_all(parts: Parts) -> dict[str, Provider]:
    """One provider of each registered kind, in registry order, each telling the App's ledger
    of every request it sends."""
    built = {name: build(parts) for name, build in REGISTRY.items()}
    for provider in built.values():
        if isinstance(provider, HTTPProvider):
            provider.ledger = parts.ledger
    return built
