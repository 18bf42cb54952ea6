"""The llamacpp provider against a real llama-server (`LLAMA_SERVER`) serving the tiny FIM model
(docs/llamacpp.md): `reaper-lsp complete` fills in the middle through `/infill` (the server's
log counts the suffix tokens), chat streams, and a prompt too long for the server's context is
cut to fit. Skipped when LLAMA_SERVER is unset."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Session, isolated_env
from tests.e2e.llamacpp_server import LlamaServer, llama_server, requires_llama_server

pytestmark = [pytest.mark.llamacpp, requires_llama_server]
__all__ = ["llama_server"]  # the fixture, imported to be used here

BIN = Path(sys.executable).parent


def config(home: Path, base_url: str) -> Path:
    path = home / "llamacpp.toml"
    path.write_text(
        '[completion]\nproviders = ["llamacpp"]\n[chat]\nproviders = ["llamacpp"]\n'
        f'[providers.llamacpp]\nbase_url = "{base_url}"\n'
    )
    return path


def suffix_taken(server: LlamaServer) -> list[int]:
    return [int(n) for n in re.findall(r"n_suffix_take = (\d+)", server.log())]


def test_complete_fills_in_the_middle_through_infill(
    home: Path, workspace: Path, llama_server: LlamaServer
) -> None:
    before = len(suffix_taken(llama_server))
    source = workspace / "add.py"
    source.write_text("def add(a, b):\n    return \n\nprint(add(1, 2))\n")
    done = subprocess.run(
        [str(BIN / "reaper-lsp"), "complete", str(source), "--line", "2", "--col", "12"],
        env=isolated_env(home, REAPER_CONFIG=str(config(home, llama_server.base_url))),
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "# llamacpp" in done.stderr  # answered by llama-server, not the offline engine
    assert done.stdout.strip()
    taken = suffix_taken(llama_server)[before:]
    assert taken and taken[-1] > 0  # the suffix reached the model: this was FIM


async def test_chat_streams_from_the_real_server(
    start_session: Any, llama_server: LlamaServer
) -> None:
    options = {
        "chat": {"providers": ["llamacpp"], "max_tokens": 24},
        "providers": {"llamacpp": {"base_url": llama_server.base_url}},
    }
    s: Session = await start_session(options)
    result = await s.command("reaper.chat", {"prompt": "Say hello."})
    assert result["provider"] == "llamacpp" and result["text"]
    await asyncio.sleep(0.1)
    deltas = [getattr(p, "delta", "") for m, p in s.notifications if m == "reaper/chatDelta"]
    assert len(deltas) > 1 and "".join(deltas) == result["text"]


async def test_prompt_too_long_for_the_context_is_cut_to_fit(
    start_session: Any, llama_server: LlamaServer
) -> None:
    options = {
        "completion": {
            "providers": ["llamacpp"],
            "debounce_ms": 0,
            "prefetch": False,
            "max_prefix_chars": 2400,  # about 1600 tokens of this code; half of it fits
        },
        "providers": {"llamacpp": {"base_url": llama_server.base_url}},
    }
    s: Session = await start_session(options)
    # --ctx-size 1024 with the default batch: /infill keeps up to 1536 prefix tokens.
    text = "x = 1\n" * 1200 + "y = \n"
    uri = s.open("long.py", text)
    answer = await s.inline(uri, 1200, 4, invoked=True)
    assert "exceeds the available context size" in llama_server.log()
    assert answer  # the shorter prompt fit and the model answered
    assert any("too long" in m.message for m in s.client.messages)
