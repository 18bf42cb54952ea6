"""The command line's grammar: global options accepted before or after the subcommand, and
every subcommand with its arguments."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reaper_lsp import __version__


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options accepted before and after the subcommand. A subcommand's copy has no
    defaults (SUPPRESS), so it only sets a value the user typed after the subcommand and
    never overwrites one typed before it."""
    unset = argparse.SUPPRESS
    parser.add_argument(
        "--log-level",
        default="WARNING" if defaults else unset,
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING (default) or ERROR",
    )
    parser.add_argument(
        "--log-file",
        default=None if defaults else unset,
        metavar="PATH",
        help="log here instead of stderr",
    )
    parser.add_argument("--version", action="version", version=f"reaper-lsp {__version__}")
    parser.add_argument(
        "--no-daemon",
        action="store_true",
        default=False if defaults else unset,
        help="serve in this process instead of through the per-user daemon",
    )
    parser.add_argument(
        "--stdio",
        action="store_true",
        default=False if defaults else unset,
        help="talk LSP over stdin/stdout (the default; accepted for clients that add it)",
    )


def _host_port(value: str) -> str:
    """`--tcp`'s value, checked here so a typo is a usage error rather than a traceback."""
    port = value.rpartition(":")[2]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (or :PORT), got {value!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reaper-lsp",
        description="AI code completion and chat for any editor that speaks LSP. Without a "
        "command, runs the language server on stdin/stdout (what editors start).",
    )
    _global_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command")
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, defaults=False)

    serve = sub.add_parser("serve", parents=[common], help="run the language server (default)")
    serve.add_argument(
        "--tcp", metavar="HOST:PORT", type=_host_port, help="listen on a TCP port (debugging)"
    )

    complete = sub.add_parser(
        "complete",
        parents=[common],
        help="print one completion for a position in a file",
        description="Print one completion for a position in FILE through the same provider "
        "chain as the server (the provider on stderr, the suggestion on stdout). The file's "
        "project (its version-control root, else the nearest folder with a project file, else "
        "its folder) is the workspace the offline engine reads. Exit 1: no suggestion.",
    )
    complete.add_argument("file", type=Path, help="the file, or - for standard input")
    complete.add_argument("--line", type=int, required=True, help="1-based line")
    complete.add_argument("--col", type=int, required=True, help="1-based column (characters)")
    complete.add_argument(
        "--language", help="the LSP language id (default: from the file name; plaintext for -)"
    )

    login = sub.add_parser(
        "login",
        parents=[common],
        help="sign in: GitHub for Copilot, Google for Claude on Vertex",
        description="Sign in from a terminal, into the token store the server reads (a running "
        "server uses it from its next request). copilot: prints a one-time code and "
        "https://github.com/login/device, where you enter it (any device will do), then waits "
        "until GitHub confirms. google: prints an address to open in a browser on this machine "
        "(the answer comes back to a one-shot listener on 127.0.0.1).",
    )
    login.add_argument("provider", choices=["copilot", "google"])
    login.add_argument(
        "--no-browser", action="store_true", help="only print the address; do not open a browser"
    )
    logout = sub.add_parser(
        "logout",
        parents=[common],
        help="forget a sign-in",
        description="Forget reaper-lsp's own sign-in (copilot.vim's or gcloud's stay theirs).",
    )
    logout.add_argument("provider", choices=["copilot", "google"])

    chat = sub.add_parser(
        "chat",
        parents=[common],
        help="ask the chat providers; without a question, an interactive prompt",
        description="Stream an answer to stdout through the chat providers ([chat] providers). "
        "Without a question: one question per line, Ctrl-C stops an answer, Ctrl-D quits.",
    )
    chat.add_argument("question", nargs="?", help="the question (none: interactive)")
    chat.add_argument("--file", type=Path, help="attach this file to the question")
    chat.add_argument("--lines", metavar="A:B", help="the lines of --file it is about (1-based)")
    chat.add_argument(
        "--continue", dest="resume", action="store_true", help="continue the last conversation"
    )
    sub.add_parser("config", parents=[common], help="print the effective configuration")
    status = sub.add_parser(
        "status",
        parents=[common],
        help="which providers answer now, sign-ins, config file, the last server run",
    )
    status.add_argument("--json", action="store_true", help="everything, as JSON")
    daemon = sub.add_parser(
        "daemon",
        parents=[common],
        help="the per-user daemon serving every editor window: start, stop, status, sessions",
        description="Editors start `reaper-lsp`, a small forwarder to one daemon per user (and "
        "environment), which it starts when none runs; the daemon exits after "
        "[daemon] idle_timeout seconds without editors. Without an action: run the daemon in "
        "the foreground.",
    )
    daemon.add_argument("action", nargs="?", choices=("start", "stop", "status", "sessions"))
    daemon.add_argument("--json", action="store_true", help="the daemon's answer, as JSON")
    _privacy_commands(sub, common)
    return parser


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of records, got {value!r}")
    return int(value)


def _duration(value: str) -> float:
    from reaper_lsp.services.audit import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _privacy_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    audit = sub.add_parser(
        "audit",
        parents=[common],
        help="what was sent upstream: sizes, files, provider, tokens (never content)",
        description="List the requests sent to providers, from the local audit log: when, from "
        "which editor, to which provider and model, for what, about which file, how many bytes "
        "of code and from which other files, how many credentials were scrubbed, tokens, "
        "latency and outcome. The log never holds content. Default: the last "
        "50 requests.",
    )
    audit.add_argument("--json", action="store_true", help="the records, as a JSON array")
    audit.add_argument("--last", type=_count, metavar="N", help="the last N requests")
    audit.add_argument(
        "--since", type=_duration, metavar="DURATION", help="requests of the last 30m, 1h, 2d…"
    )
    stats = sub.add_parser(
        "stats",
        parents=[common],
        help="requests, tokens, acceptance and latency per provider and language",
        description="Figures from the local audit log alone (nothing is sent anywhere): per "
        "provider and language, requests and failures, tokens reported, suggestions shown and "
        "accepted, latency p50/p90.",
    )
    stats.add_argument("--json", action="store_true", help="the figures, as JSON")
