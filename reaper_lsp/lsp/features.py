"""A server for one editor connection with every feature registered: each handler module
registers its own requests, notifications and commands."""

from __future__ import annotations

from reaper_lsp.lsp import chat, code_actions, commands, completion, copilot, lifecycle, privacy
from reaper_lsp.lsp.server import Host, InProcess, ReaperServer


def create_server(host: Host | None = None) -> ReaperServer:
    server = ReaperServer(host or InProcess())
    for module in (lifecycle, completion, commands, chat, code_actions, privacy, copilot):
        module.register(server)
    return server
