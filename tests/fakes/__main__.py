"""`python -m tests.fakes openai|anthropic|ollama [--tls]`: run one fake in the foreground."""

from __future__ import annotations

import argparse
import time

from tests.fakes import anthropic, ollama, openai
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

APPS = {"openai": openai.create_app, "anthropic": anthropic.create_app, "ollama": ollama.create_app}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes")
    parser.add_argument("provider", choices=sorted(APPS))
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--text", default="fake completion", help="what every request answers")
    args = parser.parse_args()
    app = APPS[args.provider]()
    app.script.default = Reply(text=args.text)
    with FakeServer(app, tls=args.tls) as server:
        print(server.base_url, flush=True)
        if server.ca_file:
            print(f"CA: {server.ca_file}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
