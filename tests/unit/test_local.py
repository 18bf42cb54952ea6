"""The offline provider over open documents and a workspace on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from reaper_lsp.core.document import Change, Document, DocumentStore, Position
from reaper_lsp.core.types import CompletionContext, ContextSnippet
from reaper_lsp.providers import local as local_module
from reaper_lsp.providers import local_scan
from reaper_lsp.providers.base import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Provider,
)
from reaper_lsp.providers.local import LocalProvider, source_id

PY = """\
def checkout(items, tax_rate):
    total = calculate_total(items, tax_rate)
    return total


def refund(items, tax_rate):
    total = calc
"""


def context_at(text: str, line: int, col: int, path: str) -> CompletionContext:
    lines = text.split("\n")
    prefix = "\n".join([*lines[:line], lines[line][:col]])
    suffix = "\n".join([lines[line][col:], *lines[line + 1 :]])
    return CompletionContext(prefix, suffix, "python", path)


async def complete(
    local: LocalProvider, context: CompletionContext, **options: object
) -> list[str]:
    request = CompletionRequest(context, **options)  # type: ignore[arg-type]
    return [piece async for piece in local.stream_completion(request)]


def workspace(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


async def test_is_a_provider_that_is_always_usable() -> None:
    local = LocalProvider(DocumentStore())
    assert isinstance(local, Provider)
    assert local.name == "local"
    assert local.unusable_reason() is None
    assert local.model_for("completion") == local.model_for("chat") == "offline"
    await local.aclose()


async def test_finishes_a_line_from_an_open_document(tmp_path: Path) -> None:
    docs = DocumentStore()
    docs.open((tmp_path / "shop.py").as_uri(), "python", 1, PY)
    local = LocalProvider(docs)
    got = await complete(local, context_at(PY, 6, 16, "shop.py"))
    assert got == ["ulate_total(items, tax_rate)"]
    await local.aclose()


async def test_yields_nothing_when_there_is_nothing_to_say() -> None:
    docs = DocumentStore()
    docs.open("untitled:1", "python", 1, "def greet(name):\n    return \n")
    local = LocalProvider(docs)
    got = await complete(local, context_at("def greet(name):\n    return \n", 1, 11, "x.py"))
    assert got == []
    await local.aclose()


async def test_documents_are_reindexed_only_when_they_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = DocumentStore()
    uri = (tmp_path / "a.py").as_uri()
    docs.open(uri, "python", 1, "alpha = make_alpha(1)\n")
    local = LocalProvider(docs)
    calls: list[str] = []
    update_lines = local.index.update_lines

    def counting(source: str, lines: list[str], *, first: int = 0) -> None:
        calls.append(source)
        update_lines(source, lines, first=first)

    monkeypatch.setattr(local.index, "update_lines", counting)
    text = "alpha = make_alpha(1)\nbeta = make_b\n"
    docs.change(uri, 2, [Change(text)])
    assert (await complete(local, context_at(text, 1, 13, "a.py"))) == []
    assert (await complete(local, context_at(text, 1, 13, "a.py"))) == []
    assert len(calls) == 1  # unchanged since: not split again
    docs.change(uri, 3, [Change("beta = make_beta(2)\n", Position(0, 0), Position(0, 0))])
    text = "beta = make_beta(2)\nalpha = make_alpha(1)\nbeta = make_b\n"
    assert (await complete(local, context_at(text, 2, 13, "a.py"))) == ["eta(2)"]
    assert len(calls) == 2
    await local.aclose()


async def test_large_documents_are_reindexed_in_the_background(tmp_path: Path) -> None:
    filler = [f"filler_{i} = {i}" for i in range(local_module.SYNC_LINES + 10)]
    text = "\n".join([*filler, "result = compute_result(alpha, beta)", "result = comp"])
    docs = DocumentStore()
    docs.open((tmp_path / "big.py").as_uri(), "python", 1, text)
    local = LocalProvider(docs)
    context = context_at(text, len(filler) + 1, 13, "big.py")
    assert (await complete(local, context)) == []  # indexing has only started
    await local.wait_indexed()
    assert (await complete(local, context)) == ["ute_result(alpha, beta)"]
    await local.aclose()


def test_the_cursor_line_is_found_when_the_prefix_was_cut() -> None:
    lines = [f"step_{i}()" for i in range(300)]
    lines[250] = "value = comp"
    text = "\n".join(lines)
    doc = Document("file:///cut.py", "python", 1, text)
    whole = context_at(text, 250, 12, "cut.py")
    cut = CompletionContext(whole.prefix[-200:], whole.suffix, "python", "cut.py")
    assert local_module._locate(doc, whole, None) == 250
    assert local_module._locate(doc, cut, None) == 250  # searched for
    assert local_module._locate(doc, cut, 250) == 250  # the hint is checked first
    lines[249] = ""
    doc = Document("file:///cut.py", "python", 1, "\n".join(lines))
    assert local_module._locate(doc, context_at("\n".join(lines), 250, 12, "cut.py"), None) == 250
    other = CompletionContext("nowhere\nvalue = comp", "\n", "python", "cut.py")
    assert local_module._locate(doc, other, None) is None


async def test_a_stale_index_does_not_offer_the_edited_line_back(tmp_path: Path) -> None:
    lines = [f"filler_{i} = {i}" for i in range(local_module.SYNC_LINES + 10)]
    text = "\n".join([*lines, "value = compute_value(a, b)"])
    uri = (tmp_path / "big.py").as_uri()
    docs = DocumentStore()
    docs.open(uri, "python", 1, text)
    local = LocalProvider(docs)
    await complete(local, context_at(text, len(lines), 27, "big.py"))
    await local.wait_indexed()
    edited = text[: text.rfind("\n") + 1] + "value = comp"
    docs.change(uri, 2, [Change(edited)])
    context = context_at(edited, len(lines), 12, "big.py")
    context = CompletionContext(context.prefix[-300:], context.suffix, "python", "big.py")
    got = await complete(local, context)  # re-indexing has only started
    assert got == ["ute_value"]  # the identifier is known; the old line is not offered back
    await local.aclose()


async def test_next_line_and_the_multiline_flag(tmp_path: Path) -> None:
    text = "try:\n    import fast\nexcept ImportError:\n    fast = None\n\ntry:\n    import fast\n"
    docs = DocumentStore()
    docs.open((tmp_path / "n.py").as_uri(), "python", 1, text + "\n")
    local = LocalProvider(docs)
    got = await complete(local, context_at(text + "\n", 7, 0, "n.py"), multiline=True)
    assert got == ["except ImportError:\n    fast = None"]
    got = await complete(local, context_at(text + "\n", 7, 0, "n.py"), multiline=False)
    assert got == ["except ImportError:"]
    got = await complete(local, context_at(text + "\n", 7, 0, "n.py"), stop=("Error",))
    assert got == ["except Import"]
    await local.aclose()


async def test_chat_says_which_settings_enable_it() -> None:
    local = LocalProvider(DocumentStore())
    request = ChatRequest((ChatMessage("user", "hi"),))
    answer = "".join([piece async for piece in local.stream_chat(request)])
    assert "[chat] providers" in answer and "OPENAI_API_KEY" in answer
    assert "ANTHROPIC_API_KEY" in answer and "login copilot" in answer
    await local.aclose()


# -- workspace ------------------------------------------------------------------------------------


async def test_workspace_files_are_indexed_and_ignored_folders_skipped(tmp_path: Path) -> None:
    root = workspace(
        tmp_path,
        {
            "lib.py": "def connect(host, port, timeout=30):\n    pass\n",
            "pkg/deep/util.py": "def deep_helper_function(x):\n    return x\n",
            "Makefile": "install_everything:\n\tpip install .\n",
            "node_modules/x.py": "zzz_node_modules_only = 1\n",
            ".venv/lib/y.py": "zzz_venv_only = 1\n",
            ".hidden/z.py": "zzz_hidden_only = 1\n",
            "build/b.py": "zzz_build_only = 1\n",
            "logs/app.py": "zzz_gitignored_only = 1\n",
            "generated_file.py": "zzz_generated_only = 1\n",
            ".gitignore": "logs/\ngenerated_*.py\n",
            "image.png": b"\x89PNG\r\n\x1a\n\x00\x00zzz_png_only",
            "data.bin.py": b"zzz_binary_only = 1\x00\x00\x00",
            "huge.py": "zzz_huge_only = 1\n" * (local_scan.MAX_FILE_BYTES // 10),
        },
    )
    docs = DocumentStore()
    docs.open((root / "main.py").as_uri(), "python", 1, "conn = conn\n")
    local = LocalProvider(docs, workspace_roots=[root])
    await local.start_workspace_scan()
    await local.wait_scanned()

    async def first(prefix: str) -> list[str]:
        return await complete(local, CompletionContext(prefix, "\n", "python", "main.py"))

    assert await first("def conn") == ["ect(host, port, timeout=30):"]
    assert await first("x = deep_help") == ["er_function"]
    assert await first("install_every") == ["thing:"]
    for skipped in ("node_modules", "venv", "hidden", "build", "gitignored", "generated"):
        assert await first(f"x = zzz_{skipped}_o") == [], skipped
    for skipped in ("png", "binary", "huge"):
        assert await first(f"x = zzz_{skipped}_o") == [], skipped
    await local.aclose()


async def test_an_open_document_is_fresher_than_the_disk(tmp_path: Path) -> None:
    root = workspace(tmp_path, {"a.py": "old_name_on_disk = 1\n"})
    docs = DocumentStore()
    docs.open((root / "a.py").as_uri(), "python", 1, "new_name_in_editor = 1\nx = \n")
    local = LocalProvider(docs, workspace_roots=[root])
    context = CompletionContext("new_name_in_editor = 1\nx = new_na", "\n", "python", "a.py")
    assert (await complete(local, context)) == ["me_in_editor"]  # indexes the document
    await local.start_workspace_scan()
    await local.wait_scanned()
    assert (await complete(local, context)) == ["me_in_editor"]
    context = CompletionContext("x = old_na", "\n", "python", "a.py")
    assert (await complete(local, context)) == []
    assert source_id((root / "a.py").as_uri()) == str(root / "a.py")
    await local.aclose()


async def test_scan_limits_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_scan, "MAX_FILES", 3)
    root = workspace(tmp_path, {f"f{i}.py": f"name_{i}_here = {i}\n" for i in range(10)})
    local = LocalProvider(DocumentStore(), workspace_roots=[root, tmp_path / "missing"])
    await local.start_workspace_scan()
    await local.wait_scanned()  # a missing root is logged, never raised
    assert local.index.stats()["sources"] == 3
    await local.aclose()


async def test_wait_scanned_without_a_scan_and_aclose_during_one(tmp_path: Path) -> None:
    local = LocalProvider(DocumentStore())
    await local.start_workspace_scan()  # no roots: nothing to do
    await local.wait_scanned()
    root = workspace(tmp_path, {f"d{i}/f.py": f"v{i} = {i}\n" for i in range(50)})
    local = LocalProvider(DocumentStore(), workspace_roots=[root])
    await local.start_workspace_scan()
    await local.aclose()  # cancels the scan quietly
    await local.wait_scanned()


async def test_the_requests_snippets_are_extra_sources(tmp_path: Path) -> None:
    """An imported file the workspace scan never read still feeds the offline engine."""
    docs = DocumentStore()
    local = LocalProvider(docs, workspace_roots=[tmp_path])
    text = "from billing import taxes\nrate = taxes.compute_"
    docs.open((tmp_path / "main.py").as_uri(), "python", 1, text)
    context = context_at(text, 1, len("rate = taxes.compute_"), "main.py")
    context = CompletionContext(context.prefix, context.suffix, "python", "main.py",
                                uri=(tmp_path / "main.py").as_uri(), line=1)  # fmt: skip
    assert await complete(local, context) == []
    taxes = ContextSnippet("billing/taxes.py", "def compute_tax_rate(region, year):\n    pass")
    assert await complete(local, context, snippets=(taxes,)) == ["tax_rate"]
    assert "context:billing/taxes.py" in local.index
    # A snippet of a file indexed already (open, or read by the scan) is not indexed twice.
    opened = ContextSnippet("main.py", "from billing import taxes")
    await complete(local, context, snippets=(opened,))
    assert "context:main.py" not in local.index


async def test_several_candidates_when_several_are_asked_for() -> None:
    docs = DocumentStore()
    docs.open("file:///w/a.py", "python", 1, PY)
    local = LocalProvider(docs)
    context = context_at(PY, 6, len("    total = calc"), "a.py")
    request = CompletionRequest(context, n=3)
    found = [pair async for pair in local.stream_alternatives(request)]
    assert [index for index, _ in found] == list(range(len(found)))
    assert found[0][1] == "ulate_total(items, tax_rate)"
    assert len({text for _, text in found}) == len(found) >= 2
