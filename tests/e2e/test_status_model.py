"""One reading of a provider's state, said once: the server's `state` and `summary` in
`reaper.status`, and error messages that name the provider once (not "ollama: resting …:
ollama: …")."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.e2e.conftest import Session


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_provider_error_names_the_provider_once(start_session: Any) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    s: Session = await start_session(
        {"chat": {"providers": ["ollama"]}, "providers": {"ollama": {"base_url": url}}}
    )
    messages = []
    for _ in range(2):  # the second finds ollama resting after the first
        with pytest.raises(Exception) as failed:
            await s.command("reaper.chat", {"prompt": "hi"})
        messages.append(str(failed.value))
    assert "Ollama is not running" in messages[0] and "resting" in messages[1]
    for message in messages:
        assert message.count("ollama:") == 1, message
    ollama = (await s.command("reaper.status"))["providers"]["ollama"]
    assert ollama["state"] == "paused"
    assert ollama["summary"].startswith("paused for ")
    assert "ollama:" not in ollama["summary"]  # shown in ollama's row: the name is said there
