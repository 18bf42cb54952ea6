"""What an editor's `reaper-lsp` loads before it forwards: the command line's entry must not
bring in what only the other subcommands need (asyncio, argparse, logging cost the forwarder
~50 ms of CPU and 8 MiB on every editor start)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("asyncio", "argparse", "logging", "ssl", "concurrent.futures", "subprocess")


def test_the_entry_point_and_forwarder_load_nothing_heavy() -> None:
    # What the console script does before main() decides to forward, and what forwarding
    # imports; run in a fresh interpreter so nothing here is already loaded.
    code = (
        "import sys, json\n"
        "import reaper_lsp.cli\n"
        "import reaper_lsp.cli.serve\n"
        "import reaper_lsp.daemon.forwarder\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert json.loads(done.stdout) == []
