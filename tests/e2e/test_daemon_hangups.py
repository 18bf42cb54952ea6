"""The real daemon outlives clients that hang up on it: a write to a closed socket fails that
connection, never the daemon and every editor it serves (the command line gives SIGPIPE its
default for commands that print, and the daemon is started through it)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import REAPER_LSP, isolated_env


def _daemon(home: Path, action: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [REAPER_LSP, "daemon", action, "--json"],
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = {"stderr": done.stderr}
    return done.returncode, answer


def test_daemon_start_leaves_a_daemon_running(home: Path) -> None:
    code, started = _daemon(home, "start")
    assert code == 0 and started["running"] is True, started
    code, status = _daemon(home, "status")
    assert code == 0 and status["pid"] == started["pid"]


def test_clients_hanging_up_before_the_answer_leave_the_daemon_serving(home: Path) -> None:
    code, started = _daemon(home, "start")
    assert code == 0, started
    hello = json.dumps({"reaper-lsp": 1, "kind": "control", "command": "status"}).encode()
    for line in (b"", b"not a hello\n", hello + b"\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(started["socket"])
            sock.sendall(line)
        time.sleep(0.2)  # the daemon answers a socket nobody reads any more
    code, status = _daemon(home, "status")
    assert code == 0 and status["pid"] == started["pid"], status
