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


_fallback = ""
"""Why the daemon could not serve this editor (said once, in the log, by `serve`)."""


def forward() -> int | None:
    """Forward stdin/stdout to the user's daemon (started when none runs); the exit status, or
    None when no daemon can serve (the caller serves in-process and says why)."""
    global _fallback
    from reaper_lsp.daemon import forwarder

    result = forwarder.run()
    if isinstance(result, forwarder.Fallback):
        _fallback = result.reason
        return None
    return result


def serve(tcp: str | None, *, daemon: bool = True) -> int:
    """Serve LSP: through the daemon unless told otherwise (or it cannot), else in this
    process; the exit status LSP asks for."""
    if tcp is None and sys.stdin.isatty():
        print(TERMINAL_NOTICE, file=sys.stderr, flush=True)
    elif tcp is None and daemon and not _fallback:
        code = forward()
        if code is not None:
            return code
    from reaper_lsp.lsp.features import create_server
    from reaper_lsp.lsp.rpc import install_log_guard
    from reaper_lsp.lsp.transport import run_stdio, run_tcp

    if _fallback and daemon:
        import logging  # not at the top: the forwarder, every editor's start, never logs

        logging.getLogger(__name__).warning("serving in this process: %s", _fallback)
    install_log_guard()
    server = create_server()
    if tcp:
        host, _, port = tcp.rpartition(":")
        return run_tcp(server, host or "127.0.0.1", int(port))
    return run_stdio(server)
