"""Run the forwarder the way an editor would, with the echo daemon as the daemon it starts.

Exit 3 (reason on stderr) when the forwarder falls back. FORWARDER_MODULES names a file that
gets the modules loaded at exit, one a line.
"""

from __future__ import annotations

import os
import sys

from reaper_lsp.daemon.forwarder import Fallback, run

ECHO_DAEMON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo_daemon.py")


def main() -> int:
    result = run(0, 1, daemon_command=[sys.executable, ECHO_DAEMON])
    modules = os.environ.get("FORWARDER_MODULES")
    if modules:
        with open(modules, "w", encoding="utf-8") as file:
            file.write("\n".join(sorted(sys.modules)))
    if isinstance(result, Fallback):
        sys.stderr.write(f"FALLBACK {result.reason}\n")
        return 3
    return result


if __name__ == "__main__":
    raise SystemExit(main())
