"""Where a benchmark's figures go: on stdout always, into the committed files under
`benchmarks/results/` only when asked with `--save` — a trial run (a quick one, a busy machine,
a branch) must not overwrite the figures README quotes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def add_save_option(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument(
        "--save",
        action="store_true",
        help=f"write the figures to benchmarks/results/{name} (the committed ones README quotes)",
    )


def finish(results: dict[str, Any], name: str, save: bool, table: str) -> Path | None:
    """Print `table`, and write `results` to the committed file `name` when `save`; the file
    written, if any."""
    print(table)
    if not save:
        print(f"\n(not saved: --save writes the full figures to benchmarks/results/{name})")
        return None
    path = RESULTS_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\n(full figures in benchmarks/results/{name})")
    return path
