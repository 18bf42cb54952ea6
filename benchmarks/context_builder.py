"""`python -m benchmarks.context_builder [--quick] [--real DIR]`: what finding snippets costs.

Twenty open documents of 2,000 lines of generated Python share a vocabulary (names drawn with
a Zipf-like skew), plus a current document of the same size with the cursor in its middle and
the prompt covering the lines a default budget would (8,000 characters before, 2,000 after).
The generator is calibrated on real code: 2,000-line files of the project's site-packages hold
a median of ~1,200 distinct names (generated: ~1,200) and 20 lines hold a median of 28 names,
52 at the 90th percentile (generated: ~45). `--real DIR` takes the first 21 Python files of at
least 2,000 lines under DIR instead. Figures, in milliseconds:

- warm: `build` again with nothing changed (every index cached);
- typing: the cursor's line changes before each build (the current document is re-indexed
  from its previous version's per-line work, as at every keystroke);
- another document changed: one of its lines edited, its version bumped;
- a document opened: one of the twenty replaced by a document never seen (indexed from
  nothing; `build` indexes at most NEW_LINES such lines, past the first document, per call);
- first build of a session: a new builder (the current document is indexed, the others wait).

And what finding them adds to a real completion request: `CompletionService.related_at` over
a session's documents (the same twenty-one, in its document store), with the default privacy
exclusions checked, the current file's imports looked up (served from memory after the
first request) and the snippets turned into the request's — warm, and at each keystroke (an
edit of the cursor's line through the document store, as `didChange` applies it).

A table on stdout; with --save, the full figures to benchmarks/results/context_builder.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.saving import add_save_option, finish
from reaper_lsp.core.context import build_context
from reaper_lsp.core.document import Change, Position
from reaper_lsp.core.scrub import Exclusions
from reaper_lsp.core.snippets import ContextBuilder, SourceDocument, prompt_lines
from reaper_lsp.services.related import RelatedCode
from reaper_lsp.workspace import Workspace

RESULTS = Path(__file__).resolve().parent / "results" / "context_builder.json"
DOCUMENTS = 20
LINES = 2_000
CURSOR = 1_000
TARGET_WARM_P50_MS = 2.0


def vocabulary(rng: random.Random, size: int = 2_500) -> list[str]:
    syllables = ["ra", "to", "me", "ki", "lu", "san", "dor", "vex", "pri", "qua", "zen", "mo"]
    words = {"".join(rng.choices(syllables, k=rng.randint(2, 3))) for _ in range(size * 2)}
    return sorted(words)[:size]


def generate(rng: random.Random, words: list[str], lines: int) -> list[str]:
    """Functions of a few statements each, names drawn from `words` with a skew."""
    weights = [1 / (rank + 1) for rank in range(len(words))]

    def name(parts: int = 2) -> str:
        return "_".join(rng.choices(words, weights, k=parts))

    out: list[str] = []
    while len(out) < lines:
        args = [name(1) for _ in range(rng.randint(1, 3))]
        out.append(f"def {name(rng.randint(2, 3))}({', '.join(args)}):\n")
        for _ in range(rng.randint(3, 12)):
            out.append(f"    {name(1)} = {name(1)}.{name(1)}({rng.choice(args)}, {name(1)})\n")
        out.append(f"    return {name()}\n")
        out.append("\n")
    return out[:lines]


def real_files(root: Path, count: int) -> list[list[str]]:
    found: list[list[str]] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.count("\n") >= LINES:
            found.append(text.splitlines(keepends=True)[:LINES])
        if len(found) == count:
            return found
    raise SystemExit(f"fewer than {count} Python files of {LINES} lines under {root}")


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def figures(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"p50": pct(0.5), "p90": pct(0.9), "n": len(values)}


def corpus(real: Path | None) -> list[list[str]]:
    """DOCUMENTS + 1 documents; one of the others defines what the cursor is typing."""
    if real is not None:
        texts = real_files(real, DOCUMENTS + 1)
    else:
        rng = random.Random(7)
        words = vocabulary(rng)
        texts = [generate(rng, words, LINES) for _ in range(DOCUMENTS + 1)]
    texts[3][700] = "def compute_total(order, taxes):\n"
    texts[-1][CURSOR] = "    total = compute_"
    return texts


class Scenario:
    """The open documents, the current one with its cursor, and one builder kept across
    builds, as a session keeps it."""

    def __init__(self, texts: list[list[str]], quick: bool) -> None:
        self.others = [
            SourceDocument(f"file:///w/m{i}.py", f"pkg/m{i}.py", "python", 1, text)
            for i, text in enumerate(texts[:DOCUMENTS])
        ]
        self.lines = texts[-1]
        prefix = "".join(self.lines[:CURSOR])[-8_000:]
        suffix = "".join(self.lines[CURSOR + 1 :])[:2_000]
        self.span = prompt_lines(prefix, suffix, CURSOR)
        self.version = 1
        self.edits = 0
        self.n = 50 if quick else 300
        self.builder = ContextBuilder()

    def current(self) -> SourceDocument:
        return SourceDocument("file:///w/main.py", "main.py", "python", self.version, self.lines)

    def build(self, builder: ContextBuilder | None = None) -> int:
        found = (builder or self.builder).build(
            self.current(), line=CURSOR, prompt_lines=self.span, others=self.others
        )
        return len(found)

    def keystroke(self) -> None:
        self.version += 1
        self.lines[CURSOR] = f"    total = compute_total(order{self.version}"
        self.build()

    def edit(self, *, reopen: bool) -> None:
        """Edit line 500 of one of the others, as a new version or as a document never seen."""
        self.edits += 1
        at = self.edits % DOCUMENTS
        doc = self.others[at]
        changed = list(doc.lines)
        changed[500] = f"    edited_{self.edits} = 1\n"
        uri = f"file:///w/new{self.edits}.py" if reopen else doc.uri
        self.others[at] = SourceDocument(uri, doc.name, doc.language, doc.version + 1, changed)
        self.build()


async def in_request(texts: list[list[str]], quick: bool) -> dict[str, dict[str, float]]:
    """What `CompletionService.related_at` costs in a request, warm and while typing."""
    root = Path("/w")
    ws = Workspace([root])
    for i, text in enumerate(texts[:DOCUMENTS]):
        ws.documents.open((root / f"pkg/m{i}.py").as_uri(), "python", 1, "".join(text))
    uri = (root / "main.py").as_uri()
    doc = ws.documents.open(uri, "python", 1, "".join(texts[-1]))
    rules = Exclusions.of(())
    related = RelatedCode(ws, lambda u: rules.excludes(ws.relative_path(u)))
    n = 50 if quick else 300

    async def request() -> float:
        """Milliseconds the snippets took (the context is cut before, as in a request)."""
        position = Position(CURSOR, len(doc.line_text(CURSOR)))
        ctx = build_context(
            doc, position, max_prefix_chars=8_000, max_suffix_chars=2_000, path="main.py"
        )
        t = time.perf_counter()
        await related.gather(doc, ctx, position.character, 4_000)
        return (time.perf_counter() - t) * 1000

    async def timed_async(edit: bool) -> list[float]:
        out = []
        for i in range(n):
            if edit:
                end = Position(CURSOR, len(doc.line_text(CURSOR)))
                ws.documents.change(
                    uri, doc.version + 1, [Change(f"{i % 10}", Position(CURSOR, 4), end)]
                )
            out.append(await request())
        return out

    for _ in range(DOCUMENTS + 2):  # past the first requests, which index and read
        await request()
    warm = await timed_async(edit=False)
    typing = await timed_async(edit=True)
    return {"request_warm_ms": figures(warm), "request_typing_ms": figures(typing)}


def bench(quick: bool, real: Path | None) -> dict[str, Any]:
    texts = corpus(real)
    request = asyncio.run(in_request([list(t) for t in texts], quick))
    s = Scenario(texts, quick)
    first = timed(s.build, 1)
    for _ in range(DOCUMENTS + 1):  # each build indexes at least one document it has not seen
        s.build()
    snippets = s.build()
    warm = timed(s.build, s.n)
    typing = timed(s.keystroke, s.n)
    changed = timed(lambda: s.edit(reopen=False), s.n // 5)
    opened = timed(lambda: s.edit(reopen=True), s.n // 10)
    first += timed(lambda: s.build(ContextBuilder()), 3 if quick else 10)
    return {
        "corpus": str(real) if real is not None else "generated",
        "documents": DOCUMENTS,
        "lines_per_document": LINES,
        "snippets_returned": snippets,
        "warm_build_ms": figures(warm),
        "typing_build_ms": figures(typing),
        "other_document_changed_build_ms": figures(changed),
        "document_opened_build_ms": figures(opened),
        "first_build_ms": figures(first),
        **request,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }


def table(r: dict[str, Any]) -> str:
    rows = [
        ("warm: nothing changed", r["warm_build_ms"], f"≤ {TARGET_WARM_P50_MS:g} (p50)"),
        ("typing: the current document changed", r["typing_build_ms"], "—"),
        ("another document changed (one line)", r["other_document_changed_build_ms"], "—"),
        ("a document opened (indexed from nothing)", r["document_opened_build_ms"], "—"),
        ("first build of a session", r["first_build_ms"], "—"),
        ("in a request (related_at): warm", r["request_warm_ms"], "—"),
        ("in a request (related_at): typing", r["request_typing_ms"], "—"),
    ]
    lines = [
        f"{r['documents']} open documents × {r['lines_per_document']} lines ({r['corpus']}), "
        f"{r['snippets_returned']} snippets returned",
        "",
        "| build | p50 (ms) | p90 (ms) | target |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {f['p50']:.2f} | {f['p90']:.2f} | {goal} |" for name, f, goal in rows]
    warm = r["warm_build_ms"]["p50"]
    size = r["lines_per_document"]
    lines.append(
        f"\nre-indexing one changed {size}-line document: ≈ "
        f"{r['other_document_changed_build_ms']['p50'] - warm:.2f} ms; indexing an opened one: "
        f"≈ {r['document_opened_build_ms']['p50'] - warm:.2f} ms (p50 minus warm p50)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.context_builder")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--real", type=Path, help="take real Python files under this directory")
    add_save_option(parser, RESULTS.name)
    args = parser.parse_args()
    results = bench(args.quick, args.real)
    finish(results, RESULTS.name, args.save, table(results))


if __name__ == "__main__":
    main()
