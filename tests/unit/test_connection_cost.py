"""What a new editor connection costs the daemon: its LSP server must not build the shared
machinery again (a cattrs converter, and the code it generates per message type, took
20-30 ms of every `initialize`); and what the first editor waits for before the daemon
listens (only what answering `initialize` needs)."""

from __future__ import annotations

import subprocess
import sys

from reaper_lsp.daemon.host import ConnectionHost, DaemonHost
from reaper_lsp.daemon.listener import Connection
from reaper_lsp.daemon.protocol import Hello
from reaper_lsp.lsp.features import create_server
from reaper_lsp.lsp.server import warm_converter


def test_every_connection_of_the_daemon_shares_one_converter() -> None:
    daemon = DaemonHost({})
    servers = [
        create_server(ConnectionHost(daemon, Connection(n, Hello("session", pid=n))))
        for n in (1, 2)
    ]
    first, second = (s.protocol._converter for s in servers)  # pygls keeps it there
    assert first is second


def test_the_first_messages_code_can_be_generated_ahead() -> None:
    warm_converter()  # what the daemon runs in a thread at start: must not raise


LATER = ("reaper_lsp.services.app", "reaper_lsp.net.client", "httpx", "aioquic")


def test_the_daemon_host_loads_no_services_before_its_first_editor_needs_them() -> None:
    # The first editor's `initialize` answer waits for whatever the daemon imports before it
    # listens; the App and its HTTP clients come after (~75 ms), as in-process.
    code = (
        "import sys, reaper_lsp.daemon.host\n"
        f"print([m for m in sys.modules if m.startswith({LATER!r})])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
