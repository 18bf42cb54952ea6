"""What the server's start costs in imports: the `initialize` answer must not wait for the
network stack, the providers or the services behind them (they load after it goes out), and
the forwarder editors start loads none of the server."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("httpx", "httpcore", "h2", "aioquic", "reaper_lsp.providers.chain",
         "reaper_lsp.services.app", "reaper_lsp.services.chat", "reaper_lsp.net.client",
         "reaper_lsp.auth.github")  # fmt: skip


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


def test_the_lsp_layer_starts_without_the_network_providers_or_services() -> None:
    loaded = loaded_after(
        "import reaper_lsp.lsp.features, reaper_lsp.lsp.transport, reaper_lsp.cli.serve"
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_forwarder_loads_no_server() -> None:
    loaded = loaded_after("import reaper_lsp.cli, reaper_lsp.daemon.forwarder")
    assert not loaded & {*HEAVY, "pygls", "lsprotocol", "reaper_lsp.lsp.server"}
