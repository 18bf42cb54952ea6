"""The snippets a session's prompts show (services/related.py, services/imported.py): other open
documents and imported workspace files, never an excluded one, never a file outside the roots,
imported files read once per change rather than at every keystroke."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from reaper_lsp.core.context import build_context
from reaper_lsp.core.document import Document, Position
from reaper_lsp.core.types import CompletionContext
from reaper_lsp.services import imported
from reaper_lsp.services.imported import ImportedFiles
from reaper_lsp.services.related import NOTHING, RelatedCode
from reaper_lsp.workspace import Workspace

TAXES = "RATES = {}\n\n\ndef compute_tax_rate(region, year):\n    return RATES[region] * year\n"
CURSOR = "rate = compute_"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def excluding(*patterns: str):  # type: ignore[no-untyped-def]
    """An `excluded(uri)` rule by file-name pattern, recording what it was asked."""
    asked: list[str] = []

    def excluded(uri: str) -> bool:
        asked.append(uri)
        name = uri.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(name, p) for p in patterns)

    excluded.asked = asked  # type: ignore[attr-defined]
    return excluded


def context(doc: Document, line: int, column: int) -> CompletionContext:
    text = doc.text
    lines = text.split("\n")
    prefix = "\n".join([*lines[:line], lines[line][:column]])
    suffix = text[len(prefix) :]
    return CompletionContext(prefix, suffix, doc.language_id, "x", uri=doc.uri, line=line)


async def gather(related: RelatedCode, doc: Document, max_chars: int = 4000):  # type: ignore[no-untyped-def]
    last = len(doc.lines) - 1
    column = len(doc.line_text(last))
    return await related.gather(doc, context(doc, last, column), column, max_chars)


def open_doc(ws: Workspace, path: Path, text: str, language: str = "python") -> Document:
    return ws.documents.open(path.as_uri(), language, 1, text)


async def test_another_open_document_is_shown_and_an_excluded_one_never(tmp_path: Path) -> None:
    ws = Workspace([tmp_path])
    related = RelatedCode(ws, excluding("secret_*"))
    open_doc(ws, tmp_path / "taxes.py", TAXES)
    open_doc(ws, tmp_path / "secret_rates.py", "def compute_secret(region):\n    return 1\n")
    doc = open_doc(ws, tmp_path / "main.py", f"x = 1\n{CURSOR}")
    found = await gather(related, doc)
    assert [s.filename for s in found.snippets] == ["taxes.py"]
    assert "def compute_tax_rate(region, year):" in found.snippets[0].text
    assert found.digest
    assert await gather(related, doc, max_chars=0) == NOTHING  # `max_context_chars = 0`


async def test_an_excluded_current_document_gets_no_snippets_at_all(tmp_path: Path) -> None:
    ws = Workspace([tmp_path])
    related = RelatedCode(ws, excluding("secret_*"))
    open_doc(ws, tmp_path / "taxes.py", TAXES)
    doc = open_doc(ws, tmp_path / "secret_main.py", f"def compute_x():\n    pass\n{CURSOR}")
    assert await gather(related, doc) == NOTHING


async def test_an_imported_file_is_read_once_not_at_every_keystroke(tmp_path: Path) -> None:
    (tmp_path / "billing").mkdir()
    taxes = tmp_path / "billing" / "taxes.py"
    taxes.write_text(TAXES, encoding="utf-8")
    ws = Workspace([tmp_path])
    clock = Clock()
    files = ImportedFiles(ws, excluding(), clock=clock)
    doc = open_doc(
        ws, tmp_path / "main.py", f"from billing.taxes import compute_tax_rate\n{CURSOR}"
    )
    [found] = await files.of(doc)
    assert (found.name, found.language, found.text) == ("billing/taxes.py", "python", TAXES)
    assert files.reads == 1
    first = files._docs[doc.uri].task
    for _ in range(50):  # keystrokes: the disk is not even looked at
        assert await files.of(doc) == [found]
    assert files._docs[doc.uri].task is first and files.reads == 1
    clock.now += imported.REFRESH  # later: looked at again in the background, not re-read
    assert await files.of(doc) == [found]
    await files._docs[doc.uri].task  # type: ignore[misc]
    assert files.reads == 1
    taxes.write_text(TAXES + "\n\ndef compute_vat(amount):\n    return amount\n")
    os.utime(taxes, (1, 1))  # a changed mtime, whatever the clock's resolution
    clock.now += imported.REFRESH
    await files.of(doc)
    await files._docs[doc.uri].task  # type: ignore[misc]
    assert files.reads == 2 and "compute_vat" in (await files.of(doc))[0].text


async def test_imports_never_read_excluded_files_or_files_outside_the_roots(
    tmp_path: Path,
) -> None:
    root, outside = tmp_path / "project", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (outside / "leak.py").write_text("def compute_leak():\n    pass\n")
    (root / "leak.py").symlink_to(outside / "leak.py")  # inside by name, outside in fact
    (root / "secret_rates.py").write_text("def compute_secret():\n    pass\n")
    (root / "alias.py").symlink_to(root / "secret_rates.py")  # an excluded file by another name
    (root / "taxes.py").write_text(TAXES)
    (root / "huge.py").write_text("x = 1\n" * (imported.MAX_FILE_BYTES // 6 + 1))
    ws = Workspace([root])
    files = ImportedFiles(ws, excluding("secret_*"))
    text = "import leak\nimport secret_rates\nimport alias\nimport huge\nimport taxes\n" + CURSOR
    doc = open_doc(ws, root / "main.py", text)
    assert [f.name for f in await files.of(doc)] == ["taxes.py"]
    # A document outside the roots imports nothing that can be read.
    stray = open_doc(ws, outside / "stray.py", "import leak\n")
    assert await files.of(stray) == []


async def test_go_packages_are_found_through_go_mod_and_read_as_folders(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "go.mod").write_text("module example.com/svc\n\ngo 1.22\n")
    (tmp_path / "svc" / "tax").mkdir()
    (tmp_path / "svc" / "tax" / "rate.go").write_text("package tax\n\nfunc Rate() float64 {}\n")
    (tmp_path / "svc" / "tax" / "rate_test.go").write_text("package tax\n")
    ws = Workspace([tmp_path])
    files = ImportedFiles(ws, excluding())
    text = 'package main\n\nimport (\n\t"fmt"\n\t"example.com/svc/tax"\n)\n'
    doc = open_doc(ws, tmp_path / "svc" / "main.go", text, "go")
    assert [(f.name, f.language) for f in await files.of(doc)] == [("svc/tax/rate.go", "go")]


@pytest.mark.parametrize(
    ("current", "text", "target", "language"),
    [
        ("web/app.ts", "import { rate } from './tax';\n", "web/tax.ts", "typescript"),
        ("src/main.rs", "mod tax;\nuse crate::tax::rate;\n", "src/tax.rs", "rust"),
    ],
)
async def test_javascript_and_rust_imports_are_read(
    tmp_path: Path, current: str, text: str, target: str, language: str
) -> None:
    (tmp_path / target).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / target).write_text("export function rate() {}\n")
    ws = Workspace([tmp_path])
    files = ImportedFiles(ws, excluding())
    (tmp_path / current).parent.mkdir(parents=True, exist_ok=True)
    doc = open_doc(ws, tmp_path / current, text, language)
    assert [f.name for f in await files.of(doc)] == [target]


async def test_the_service_shows_imported_definitions_and_keys_its_cache_by_them(
    tmp_path: Path,
) -> None:
    (tmp_path / "taxes.py").write_text(TAXES)
    ws = Workspace([tmp_path])
    related = RelatedCode(ws, excluding())
    doc = open_doc(ws, tmp_path / "main.py", f"from taxes import compute_tax_rate\n{CURSOR}")
    with_import = await gather(related, doc)
    assert [s.filename for s in with_import.snippets] == ["taxes.py"]
    other = open_doc(ws, tmp_path / "other.py", f"x = 1\n{CURSOR}")
    assert (await gather(related, other)).digest != with_import.digest


async def test_a_distant_part_of_the_current_file_is_shown_unless_it_is_in_the_prompt(
    tmp_path: Path,
) -> None:
    ws = Workspace([tmp_path])
    related = RelatedCode(ws, excluding())
    filler = "".join(f"value_{i} = {i}\n" for i in range(800))
    doc = open_doc(ws, tmp_path / "main.py", TAXES + filler + CURSOR)
    last = len(doc.lines) - 1
    cut = build_context(
        doc, Position(last, len(CURSOR)), max_prefix_chars=8000, max_suffix_chars=2000,
        path="main.py",
    )  # fmt: skip
    found = await related.gather(doc, cut, len(CURSOR), 4000)
    assert [s.filename for s in found.snippets] == ["main.py"]
    assert "def compute_tax_rate(region, year):" in found.snippets[0].text
    # With the whole file in the prompt, nothing of it is repeated.
    whole = build_context(
        doc, Position(last, len(CURSOR)), max_prefix_chars=10**6, max_suffix_chars=2000,
        path="main.py",
    )  # fmt: skip
    assert (await related.gather(doc, whole, len(CURSOR), 4000)).snippets == ()
