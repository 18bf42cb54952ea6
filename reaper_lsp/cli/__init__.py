"""The command line: parse the arguments, set up logging, and run the subcommand (each in its
own module, imported only when it runs, so the server's start pays for nothing else)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from types import FrameType

EDITOR_ARGUMENTS = ((), ("--stdio",), ("serve",), ("serve", "--stdio"))
"""How editors start the server: straight to the forwarder, before anything else is imported
(a warm daemon then answers an editor's `initialize` within a few tens of milliseconds)."""


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGINT, _quit_quietly)
    arguments = tuple(sys.argv[1:] if argv is None else argv)
    if arguments in EDITOR_ARGUMENTS and not sys.stdin.isatty():
        from reaper_lsp.cli.serve import forward

        code = forward()
        if code is not None:
            return code
    parser = build_parser()
    args = parser.parse_args(arguments)
    command = args.command or "serve"
    if args.stdio and (command != "serve" or getattr(args, "tcp", None)):
        parser.error("--stdio is for serving LSP (reaper-lsp [serve] --stdio), not with that")
    from reaper_lsp.logs import setup_logging

    setup_logging(args.log_level, args.log_file, tagged=command == "daemon")
    if command == "serve":
        from reaper_lsp.cli.serve import serve

        return serve(getattr(args, "tcp", None), daemon=not args.no_daemon)
    if hasattr(signal, "SIGPIPE"):  # `reaper-lsp status | head -1` ends quietly, as Unix tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return _run(command, args)
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The whole command line's parser (imported only now: an editor's start, which forwards
    before parsing anything, must not pay for argparse)."""
    from reaper_lsp.cli.parser import build_parser as build

    return build()


def _run(command: str, args: object) -> int:
    # Not at the top: the forwarder, every editor's `reaper-lsp`, never needs it (~15 ms, 3 MiB).
    import asyncio

    a = vars(args)
    if command == "complete":
        from reaper_lsp.cli.complete import complete

        return asyncio.run(complete(a["file"], a["line"], a["col"], a["language"]))
    if command == "login":
        from reaper_lsp.cli.login import login

        return asyncio.run(login(a["provider"], open_browser=not a["no_browser"]))
    if command == "logout":
        from reaper_lsp.cli.login import logout

        return asyncio.run(logout(a["provider"]))
    if command == "chat":
        from reaper_lsp.cli.chat import run

        return run(a["question"], a["file"], a["lines"], a["resume"])
    if command == "config":
        from reaper_lsp.cli.status import show_config

        return show_config()
    if command == "status":
        from reaper_lsp.cli.status import show_status

        return show_status(as_json=a["json"])
    if command == "daemon":
        from reaper_lsp.cli import daemon

        return daemon.run(a["action"], as_json=a["json"])
    if command == "audit":
        from reaper_lsp.cli.audit import show_audit

        return show_audit(as_json=a["json"], last=a["last"], since=a["since"])
    if command == "stats":
        from reaper_lsp.cli.audit import show_stats

        return show_stats(as_json=a["json"])
    raise AssertionError(command)


def _quit_quietly(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C ends any command at once, with exit status 130 and no traceback. Exiting here
    rather than raising KeyboardInterrupt is deliberate: the stdio server's reader thread sits
    in a blocking read() that no exception reaches, so interpreter shutdown would wait for it
    until a second Ctrl-C aborted the process. Only os.write here: the signal may arrive in
    the middle of a write to sys.stderr, which must not be re-entered."""
    with contextlib.suppress(OSError):
        if os.isatty(2):
            os.write(2, b"\r\033[K")  # clear a spinner or the echoed ^C, print nothing
    os._exit(130)
