"""What a new editor connection costs the daemon: its LSP server must not build the shared
machinery again (a cattrs converter, and the code it generates per message type, took
20-30 ms of every `initialize`)."""

from __future__ import annotations

from reaper_lsp.daemon.host import ConnectionHost, DaemonHost
from reaper_lsp.daemon.listener import Connection
from reaper_lsp.daemon.protocol import Hello
from reaper_lsp.lsp.features import create_server


def test_every_connection_of_the_daemon_shares_one_converter() -> None:
    daemon = DaemonHost({})
    servers = [
        create_server(ConnectionHost(daemon, Connection(n, Hello("session", pid=n))))
        for n in (1, 2)
    ]
    first, second = (s.protocol._converter for s in servers)  # pygls keeps it there
    assert first is second
