"""The benchmarks write the committed figures (`benchmarks/results/*.json`, which README quotes)
only when asked with `--save`; a trial run prints its table and leaves them alone."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import saving

FIGURES = {"p50": 1.5}
MODULES = {
    "run": "latest.json",
    "typing_trace": "typing.json",
    "context_builder": "context_builder.json",
    "http3": "http3.json",
}


def run_main(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, *args: str) -> Any:
    bench = importlib.import_module(f"benchmarks.{module}")

    async def measured(*_: object) -> dict[str, Any]:
        return dict(FIGURES)

    def measured_now(*_: object) -> dict[str, Any]:
        return dict(FIGURES)

    is_async = module != "context_builder"
    monkeypatch.setattr(bench, "bench", measured if is_async else measured_now)
    monkeypatch.setattr(bench, "table", lambda results: "| the table |")
    monkeypatch.setattr(saving, "RESULTS_DIR", tmp_path / "results")
    if hasattr(bench, "RESULTS"):  # wherever a run might write, it is not the committed file
        monkeypatch.setattr(bench, "RESULTS", tmp_path / "elsewhere" / bench.RESULTS.name)
    monkeypatch.setattr(sys, "argv", [module, *args])
    bench.main()
    return bench


@pytest.mark.parametrize("module", MODULES)
def test_a_run_without_save_writes_no_results_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], module: str
) -> None:
    run_main(monkeypatch, tmp_path, module)
    out = capsys.readouterr().out
    assert "| the table |" in out and "--save" in out
    assert not any(tmp_path.rglob("*.json"))


@pytest.mark.parametrize("module,name", MODULES.items())
def test_save_writes_the_committed_results_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, name: str
) -> None:
    run_main(monkeypatch, tmp_path, module, "--save")
    written = tmp_path / "results" / name
    assert json.loads(written.read_text())["p50"] == 1.5
    assert [p.name for p in tmp_path.rglob("*.json")] == [name]
