"""Command line: argument parsing and printing only; the work is done by the engine/server."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from reaper_lsp import __version__


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR")
    common.add_argument("--log-file", default=None, help="log here instead of stderr")

    parser = argparse.ArgumentParser(
        prog="reaper-lsp",
        description="AI code completion and chat for any editor that speaks LSP.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"reaper-lsp {__version__}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", parents=[common], help="run the language server (default)")
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (default)")
    mode.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP port (debugging)")

    complete = sub.add_parser(
        "complete", parents=[common], help="print one completion for a position in a file"
    )
    complete.add_argument("file", type=Path)
    complete.add_argument("--line", type=int, required=True, help="1-based line")
    complete.add_argument("--col", type=int, required=True, help="1-based column (characters)")

    login = sub.add_parser(
        "login", parents=[common], help="sign in: GitHub for Copilot, Google for Claude on Vertex"
    )
    login.add_argument("provider", choices=["copilot", "google"])
    login.add_argument("--no-browser", action="store_true", help="only print the address to open")
    logout = sub.add_parser("logout", parents=[common], help="forget a sign-in")
    logout.add_argument("provider", choices=["copilot", "google"])

    sub.add_parser("config", parents=[common], help="print the effective configuration")
    sub.add_parser("status", parents=[common], help="providers, config file, last run figures")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from reaper_lsp.logs import setup_logging

    setup_logging(args.log_level, args.log_file)
    command = args.command or "serve"
    if command == "serve":
        return _serve(getattr(args, "tcp", None))
    if command == "complete":
        return asyncio.run(_complete(args.file, args.line, args.col))
    if command == "login":
        from reaper_lsp.login import login

        return asyncio.run(login(args.provider, open_browser=not args.no_browser))
    if command == "logout":
        from reaper_lsp.login import logout

        return asyncio.run(logout(args.provider))
    if command == "config":
        return _config()
    if command == "status":
        return _status()
    raise AssertionError(command)


def _serve(tcp: str | None) -> int:
    from reaper_lsp.server import create_server

    server = create_server()
    if tcp:
        host, _, port = tcp.rpartition(":")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io()
    return 0


def _workspace_of(file: Path) -> tuple[Path, Path]:
    """(absolute file, workspace root): the current directory when the file is in it, else
    the file's folder."""
    path = file.absolute()
    root = Path.cwd()
    return path, root if path.is_relative_to(root) else path.parent


async def _complete(file: Path, line: int, col: int) -> int:
    from reaper_lsp import config
    from reaper_lsp.core.document import Position, index_to_utf16
    from reaper_lsp.engine import Engine, language_of
    from reaper_lsp.logs import register_secret

    try:
        path, root = await asyncio.to_thread(_workspace_of, file)
        text = await asyncio.to_thread(path.read_text, encoding="utf-8", errors="replace")
    except OSError as exc:
        print(f"reaper-lsp: cannot read {file}: {exc.strerror}", file=sys.stderr)
        return 2
    loaded = config.load(workspace_root=root)
    for problem in loaded.errors:
        print(f"reaper-lsp: config: {problem}", file=sys.stderr)
    engine = Engine(loaded, workspace_roots=[root])
    for secret in engine.secrets():
        register_secret(secret)
    try:
        uri = path.as_uri()
        doc = engine.documents.open(uri, language_of(file), 1, text)
        line_text = doc.line_text(line - 1)
        position = Position(line - 1, index_to_utf16(line_text, max(0, col - 1)))
        await engine.start()
        await engine.local.wait_scanned()
        suggestion = await engine.complete(uri, position)
    finally:
        await engine.aclose()
    if suggestion is None:
        print("reaper-lsp: no suggestion", file=sys.stderr)
        return 1
    model = f" ({suggestion.model})" if suggestion.model else ""
    print(f"# {suggestion.provider}{model}", file=sys.stderr)
    sys.stdout.write(suggestion.text + "\n")
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


def _status() -> int:
    from reaper_lsp import config
    from reaper_lsp.engine import Engine, status_file

    loaded = config.load(workspace_root=Path.cwd())
    engine = Engine(loaded)
    status = engine.status()
    print(f"config file: {status['configFile'] or '(none)'}")
    print("completion chain: " + " → ".join(map(str, status["completionChain"])))  # type: ignore[call-overload]
    providers = status["providers"]
    assert isinstance(providers, dict)
    for name, info in providers.items():
        ok = "ready" if info["configured"] else f"not usable: {info['reason']}"
        print(f"  {name:8} {ok}")
    path = status_file()
    if path.exists():
        last = json.loads(path.read_text(encoding="utf-8"))
        print(f"last server run ({path}):")
        print(
            json.dumps(
                {
                    "cache": last.get("cache"),
                    "providers": {n: p.get("http") for n, p in last.get("providers", {}).items()},
                },
                indent=2,
            )
        )
    else:
        print("no server run recorded yet")
    return 0
