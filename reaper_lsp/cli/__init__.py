"""Command line: argument parsing and printing only; the work is done by the app/server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

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
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (default)")
    mode.add_argument(
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
    complete.add_argument("file", type=Path)
    complete.add_argument("--line", type=int, required=True, help="1-based line")
    complete.add_argument("--col", type=int, required=True, help="1-based column (characters)")

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGINT, _quit_quietly)
    args = build_parser().parse_args(argv)
    from reaper_lsp.logs import setup_logging

    setup_logging(args.log_level, args.log_file)
    command = args.command or "serve"
    if command == "serve":
        tcp = getattr(args, "tcp", None)
        if tcp is None and sys.stdin.isatty():
            print(_TERMINAL_NOTICE, file=sys.stderr, flush=True)
        return _serve(tcp)
    if command == "complete":
        return asyncio.run(_complete(args.file, args.line, args.col))
    if command == "login":
        from reaper_lsp.cli.login import login

        return asyncio.run(login(args.provider, open_browser=not args.no_browser))
    if command == "logout":
        from reaper_lsp.cli.login import logout

        return asyncio.run(logout(args.provider))
    if command == "chat":
        from reaper_lsp.cli.chat import run

        return run(args.question, args.file, args.lines, args.resume)
    if command == "config":
        return _config()
    if command == "status":
        return _status(as_json=args.json)
    raise AssertionError(command)


_TERMINAL_NOTICE = """\
reaper-lsp is a language server: an editor starts it and talks LSP to it over stdin/stdout.
  Set up an editor: ready configurations are in the editors/ folder of the reaper-lsp
                    source (Neovim, VS Code, Helix, Zed, ...); the command to start is `reaper-lsp`.
  Try it here:      reaper-lsp complete FILE --line L --col C    (reaper-lsp --help for more)
Serving LSP on stdin now; Ctrl-C quits."""


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


def _serve(tcp: str | None) -> int:
    from reaper_lsp.lsp.rpc import install_log_guard, run_stdio, run_tcp
    from reaper_lsp.lsp.server import create_server

    install_log_guard()
    server = create_server()
    if tcp:
        host, _, port = tcp.rpartition(":")
        run_tcp(server, host or "127.0.0.1", int(port))
    else:
        run_stdio(server)
    return 0


_VCS_MARKERS = (".git", ".hg", ".svn", ".jj")
_PROJECT_MARKERS = (
    "pyproject.toml", "setup.py", "setup.cfg", "package.json", "Cargo.toml", "go.mod",
    "pom.xml", "build.gradle", "build.gradle.kts", "Gemfile", "composer.json", "mix.exs",
    "CMakeLists.txt",
)  # fmt: skip


def project_root(file: Path) -> Path:
    """The workspace `complete` reads for an absolute `file`: its version-control root, else
    the nearest folder with a project file, else the file's folder. Never the current
    directory: run from / or a home folder, that is thousands of unrelated files."""
    for markers in (_VCS_MARKERS, _PROJECT_MARKERS):
        for folder in file.parents:
            if any((folder / marker).exists() for marker in markers):
                return folder
    return file.parent


def position_problem(text: str, line: int, col: int, name: str) -> str | None:
    """What is wrong with a 1-based (line, column) in `text`, naming the valid range; None
    when the position exists. The line after a final newline exists (a cursor can be there);
    the column just after a line's last character too."""
    from reaper_lsp.core.document import split_lines, strip_terminator

    lines = split_lines(text)
    if not 1 <= line <= len(lines):
        where = "past the end of" if line > len(lines) else "not a line of"
        return f"--line {line} is {where} {name}: lines are 1 to {len(lines)}"
    last = len(strip_terminator(lines[line - 1])) + 1
    if not 1 <= col <= last:
        return (
            f"--col {col} is outside line {line} of {name}: columns are 1 to {last}"
            f" ({last} is just after the line's last character)"
        )
    return None


def _out(text: str, stream: TextIO) -> None:
    """Write what a model or a config file supplied: no escape sequence or control character
    of theirs reaches the terminal."""
    from reaper_lsp.core.sanitize import sanitize_terminal

    stream.write(sanitize_terminal(text) + "\n")
    stream.flush()


async def _complete(file: Path, line: int, col: int) -> int:
    from reaper_lsp import config
    from reaper_lsp.core.document import Position, index_to_utf16
    from reaper_lsp.logs import register_secret
    from reaper_lsp.services.app import App
    from reaper_lsp.workspace import language_of

    path = await asyncio.to_thread(file.absolute)
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8", errors="replace")
    except OSError as exc:
        _out(f"reaper-lsp complete: error: cannot read {file}: {exc.strerror or exc}", sys.stderr)
        return 2
    problem = position_problem(text, line, col, str(file))
    if problem is not None:
        _out(f"reaper-lsp complete: error: {problem}", sys.stderr)
        return 2
    root = await asyncio.to_thread(project_root, path)
    loaded = config.load(workspace_root=root)
    for error in loaded.errors:
        _out(f"reaper-lsp: config: {error}", sys.stderr)
    app = App(loaded, workspace_roots=[root])
    for secret in app.secrets():
        register_secret(secret)
    try:
        uri = path.as_uri()
        doc = app.workspace.documents.open(uri, language_of(file), 1, text)
        line_text = doc.line_text(line - 1)
        position = Position(line - 1, index_to_utf16(line_text, max(0, col - 1)))
        await app.start()
        await app.local.wait_scanned()
        suggestion = await app.completion.complete(uri, position, invoked=True)
    finally:
        await app.aclose()
    if suggestion is None:
        print("reaper-lsp: no suggestion", file=sys.stderr)
        return 1
    model = f" ({suggestion.model})" if suggestion.model else ""
    _out(f"# {suggestion.provider}{model}", sys.stderr)
    _out(suggestion.text, sys.stdout)
    return 0


def _config() -> int:
    from reaper_lsp import config

    loaded = config.load(workspace_root=Path.cwd())
    print(f"# config file: {loaded.user_file or '(none)'}")
    for key, value, source in loaded.describe():
        print(f"{key} = {value}  # {source}")
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in loaded.errors:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if loaded.errors else 0


def _status(*, as_json: bool) -> int:
    from reaper_lsp import config
    from reaper_lsp.cli.status import probe_all, summary
    from reaper_lsp.services.app import App
    from reaper_lsp.services.status import status_file

    loaded = config.load(workspace_root=Path.cwd())
    status = App(loaded).status().to_json()
    providers = status["providers"]
    assert isinstance(providers, dict)
    used = {*map(str, status["completionChain"]), *loaded.settings.chat.providers}  # type: ignore[call-overload]
    wanted = [n for n, info in providers.items() if info["configured"] and n in used]
    probes = asyncio.run(probe_all(wanted, loaded.settings))
    path = status_file()
    last = _read_json(path)
    if as_json:
        reachable = {name: problem or "ok" for name, problem in probes.items()}
        print(json.dumps({**status, "reachable": reachable, "lastRun": last}, indent=2))
        return 0
    explicit = bool(os.environ.get("REAPER_CONFIG", "").strip())
    for line in summary(
        status, loaded, probes, explicit_config=explicit, last_run=last, last_run_path=path
    ):
        _out(line, sys.stdout)
    return 0


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None
