"""`reaper-lsp daemon [start|stop|status|sessions] [--json]`: the per-user daemon that serves
every editor window. Without an action it runs in the foreground (what the forwarder starts,
detached); the actions ask the daemon serving this environment over its socket."""

from __future__ import annotations

import json

from reaper_lsp.cli.output import error, out

ACTIONS = ("start", "stop", "status", "sessions")


def run(action: str | None, *, as_json: bool) -> int:
    if action is None:
        from reaper_lsp.daemon.host import main

        return main()
    from reaper_lsp.daemon.paths import DaemonUnavailable
    from reaper_lsp.daemon.protocol import HandshakeError, ask
    from reaper_lsp.daemon.spawn import ensure_running

    try:
        answer = ensure_running() if action == "start" else ask(action)
    except (FileNotFoundError, ConnectionRefusedError):
        if as_json:
            print(json.dumps({"running": False}))
        else:
            out("no reaper-lsp daemon is running for this environment")
        return 0 if action == "stop" else 1
    except (DaemonUnavailable, HandshakeError, OSError) as exc:
        error("daemon", str(exc) or type(exc).__name__)
        return 1
    if as_json:
        print(json.dumps({"running": action != "stop", **answer}, indent=2))
        return 0
    for line in describe(action, answer):
        out(line)
    return 0


def describe(action: str, answer: dict[str, object]) -> list[str]:
    """The daemon's answer to `action` in a few lines."""
    pid = answer.get("pid", "?")
    if action == "stop":
        return [f"daemon {pid} is stopping"]
    if action == "sessions":
        sessions = answer.get("sessions")
        rows = sessions if isinstance(sessions, list) else []
        if not rows:
            return [f"daemon {pid}: no editor connected"]
        return [f"daemon {pid}: {len(rows)} editor session(s)"] + [
            f"  #{s.get('session')} {s.get('client') or '?'} in {s.get('root') or '?'}"
            f" (forwarder pid {s.get('pid')})"
            for s in rows
            if isinstance(s, dict)
        ]
    rss = answer.get("rss")
    memory = f"{int(rss) / 2**20:.1f} MiB" if isinstance(rss, int) else "?"
    uptime = answer.get("uptime")
    ran = f"{float(uptime):.0f} s" if isinstance(uptime, int | float) else "?"
    return [
        f"daemon {pid}: reaper-lsp {answer.get('version', '?')}, up {ran}, {memory},"
        f" {answer.get('sessions', 0)} session(s)",
        f"  socket: {answer.get('socket', '?')}",
    ]
