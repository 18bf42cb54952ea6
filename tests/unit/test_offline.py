"""The offline engine: finishing lines from similar ones, predicting the next line, completing
identifiers — fast on a large index, never empty, never repeating what is typed."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.core.document import DocumentStore
from reaper_lsp.core.offline import OfflineIndex
from reaper_lsp.core.types import CompletionContext
from reaper_lsp.providers.base import CompletionRequest, StreamStats
from reaper_lsp.providers.local import LocalProvider


def ctx(prefix: str, suffix: str = "\n") -> CompletionContext:
    return CompletionContext(prefix, suffix, "python", "a.py")


def test_finishes_a_line_from_a_similar_one() -> None:
    index = OfflineIndex()
    index.update("x.py", "total = calculate_total(items, tax_rate)\nprint(total)\n")
    assert index.suggest(ctx("def f():\n    total = calc")) == ["ulate_total(items, tax_rate)"]


def test_the_line_being_edited_is_not_its_own_suggestion() -> None:
    index = OfflineIndex()
    index.update("cur", "value = compute(1)\n")
    assert index.suggest(ctx("value = comp"), current_source="cur", current_line=0) == [
        "ute"
    ]  # only the identifier is known, not the line itself


def test_text_after_the_cursor_is_respected() -> None:
    index = OfflineIndex()
    index.update("x.py", "print(f'hello {name}')\n")
    assert index.suggest(ctx("print(f'hel", "')\n")) == ["lo {name}"]


def test_next_line_after_a_known_line() -> None:
    index = OfflineIndex()
    index.update("x.py", "import os\nimport sys\n\nfor item in items:\n    handle(item)\n")
    assert index.suggest(ctx("for item in items:\n    ")) == ["handle(item)"]


def test_identifier_completion() -> None:
    index = OfflineIndex()
    index.update("x.py", "configuration = load_configuration()\n")
    assert index.suggest(ctx("x = load_conf")) == ["iguration"]


def test_removing_a_source_forgets_it() -> None:
    index = OfflineIndex()
    index.update("x.py", "alpha_beta_gamma = 1\n")
    index.remove("x.py")
    assert len(index) == 0 and index.suggest(ctx("alpha_b")) == []


def test_twenty_thousand_lines_answer_fast() -> None:
    index = OfflineIndex()
    text = "".join(
        f"result_{i % 500} = compute_value(item_{i}, factor={i % 7})\n" for i in range(20_000)
    )
    index.update("big.py", text)
    start = time.perf_counter()
    for _ in range(100):
        assert index.suggest(ctx("result_42 = compute_va"))
    assert (time.perf_counter() - start) / 100 < 0.02


@given(st.text(max_size=300), st.text(max_size=40), st.text(max_size=20))
def test_suggestions_are_never_blank_or_repeat_the_typed_text(
    corpus: str, typed: str, after: str
) -> None:
    index = OfflineIndex()
    index.update("x", corpus)
    for text in index.suggest(ctx(typed, after), limit=3):
        assert text.strip()
        assert "\n" not in text


async def test_local_provider_reads_open_documents_and_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "lib.py").write_text("def connect(host, port, timeout=30):\n    pass\n")
    ignored = tmp_path / "node_modules"
    ignored.mkdir()
    (ignored / "x.py").write_text("zzz_only_in_node_modules = 1\n")
    docs = DocumentStore()
    docs.open((tmp_path / "main.py").as_uri(), "python", 1, "conn = conn\n")
    local = LocalProvider(docs, workspace_roots=[tmp_path])
    await local.start_workspace_scan()
    await local.wait_scanned()

    async def first(prefix: str) -> list[str]:
        request = CompletionRequest(CompletionContext(prefix, "\n", "python", "main.py"))
        return [piece async for piece in local.stream_completion(request, StreamStats())]

    assert await first("def conn") == ["ect(host, port, timeout=30):"]
    assert await first("x = zzz_only") == []
    await local.aclose()
