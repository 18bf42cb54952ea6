"""`reaper-lsp`, `reaper-lsp --stdio`, `reaper-lsp serve [--stdio | --tcp HOST:PORT]`: the
language server, as editors start it."""

from __future__ import annotations

import sys

TERMINAL_NOTICE = """\
reaper-lsp is a language server: an editor starts it and talks LSP to it over stdin/stdout.
  Set up an editor: ready configurations are in the editors/ folder of the reaper-lsp
                    source (Neovim, VS Code, Helix, Zed, ...); the command to start is `reaper-lsp`.
  Try it here:      reaper-lsp complete FILE --line L --col C    (reaper-lsp --help for more)
Serving LSP on stdin now; Ctrl-C quits."""


def serve(tcp: str | None) -> int:
    """Serve in this process; the exit status LSP asks for."""
    from reaper_lsp.lsp.features import create_server
    from reaper_lsp.lsp.rpc import install_log_guard
    from reaper_lsp.lsp.transport import run_stdio, run_tcp

    if tcp is None and sys.stdin.isatty():
        print(TERMINAL_NOTICE, file=sys.stderr, flush=True)
    install_log_guard()
    server = create_server()
    if tcp:
        host, _, port = tcp.rpartition(":")
        return run_tcp(server, host or "127.0.0.1", int(port))
    return run_stdio(server)
