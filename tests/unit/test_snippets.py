"""Snippets from other open files, imported files and distant parts of the current file."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reaper_lsp.core import name_index
from reaper_lsp.core.name_index import NameIndex
from reaper_lsp.core.snippets import (
    ContextBuilder,
    ImportedFile,
    Snippet,
    SourceDocument,
    prompt_lines,
)
from reaper_lsp.core.symbols import definitions, family

TAXES = """\
import math

RATES = {"north": 0.2, "south": 0.1}


def compute_tax_rate(region, year):
    base = RATES[region]
    return base * (1 + 0.01 * (year - 2000))


def unrelated_helper():
    return math.pi
"""


def doc(name: str, text: str, language: str = "python", version: int = 1) -> SourceDocument:
    return SourceDocument(f"file:///w/{name}", name, language, version, text.splitlines(True))


def build(
    current: SourceDocument,
    others: Sequence[SourceDocument] = (),
    *,
    line: int | None = None,
    builder: ContextBuilder | None = None,
    **kwargs: object,
) -> list[Snippet]:
    """Cursor at the end of `current` (or at the end of `line`), the whole file in the prompt
    unless `prompt_lines` says otherwise."""
    last = len(current.lines) - 1 if line is None else line
    options: dict[str, object] = {"prompt_lines": (0, len(current.lines) - 1)} | kwargs
    return (builder or ContextBuilder()).build(
        current,
        line=last,
        others=others,
        **options,  # type: ignore[arg-type]
    )


def test_typing_a_prefix_brings_the_definition_from_another_open_file() -> None:
    current = doc("billing.py", "def invoice(order):\n    rate = compute_")
    found = build(current, [doc("taxes.py", TAXES)])
    assert found[0].filename == "taxes.py"
    assert found[0].origin == "open"
    assert found[0].text.startswith("def compute_tax_rate(region, year):\n")
    assert "unrelated_helper" not in found[0].text  # the definition ends at the next one


def test_a_name_called_at_the_cursor_brings_its_definition() -> None:
    current = doc("billing.py", "def invoice(order):\n    return compute_tax_rate(order.region, ")
    found = build(current, [doc("taxes.py", TAXES)])
    assert "def compute_tax_rate(region, year):" in found[0].text


def test_the_cursor_column_decides_the_name_being_typed() -> None:
    current = doc("billing.py", "rate = compute_ + other_total\n")
    at_name = build(current, [doc("taxes.py", TAXES)], line=0, column=len("rate = compute_"))
    assert at_name and "compute_tax_rate" in at_name[0].text
    past_it = build(current, [doc("taxes.py", TAXES)], line=0, column=len("rate = comp"))
    assert all(s.score < 0.5 for s in past_it)  # "comp" is shorter than names worth guessing


@pytest.mark.parametrize(
    ("language", "line", "name"),
    [
        ("python", "    async def fetch_rows(self, query):", "fetch_rows"),
        ("python", "class TaxTable(Base):", "TaxTable"),
        ("python", "DEFAULT_REGION = 'north'", "DEFAULT_REGION"),
        ("typescript", "export async function computeTax(region: string) {", "computeTax"),
        ("typescriptreact", "export const TaxBadge = ({ rate }: Props) => {", "TaxBadge"),
        ("javascript", "  computeTotal(items) {", "computeTotal"),
        ("typescript", "export interface TaxRow {", "TaxRow"),
        ("go", "func (s *Server) ComputeTax(r Region) float64 {", "ComputeTax"),
        ("go", "type TaxTable struct {", "TaxTable"),
        ("rust", "pub(crate) async fn compute_tax(region: &str) -> f64 {", "compute_tax"),
        ("rust", "pub struct TaxTable {", "TaxTable"),
        ("java", "    public static double computeTax(String region) {", "computeTax"),
        ("java", "public final class TaxTable {", "TaxTable"),
        ("c", "static double compute_tax(const char *region);", "compute_tax"),
        ("cpp", "std::vector<double> TaxTable::rates(int year) const {", "rates"),
        ("kotlin", "fun computeTax(region: String): Double {", "computeTax"),
        ("ruby", "def compute_tax(region)", "compute_tax"),
    ],
)
def test_definitions_are_recognised_in_each_language(language: str, line: str, name: str) -> None:
    assert definitions(family(language), line) == (name,)


@pytest.mark.parametrize(
    ("language", "line"),
    [
        ("python", "    compute_tax_rate(region, year)"),
        ("python", "    if rate == 3:"),
        ("javascript", "  if (ready) {"),
        ("javascript", "  it('adds up', function () {"),
        ("typescript", "  describe('totals', () => {"),
        ("java", "        return computeTax(region);"),
        ("c", "    total = compute_tax(region);"),
        ("c", "    } else if (x) {"),
        ("go", "    x := compute(y)"),
        ("rust", "impl TaxTable {"),
    ],
)
def test_calls_and_statements_define_nothing(language: str, line: str) -> None:
    assert definitions(family(language), line) == ()


def test_a_name_the_current_file_defines_fetches_no_homonym_from_other_files() -> None:
    other = "class Other:\n    def render(self, page):\n        return page.body\n"
    mine = (
        "class Mine:\n    def render(self, view):\n        pass\n\n"
        "    def show(self):\n        self.render("
    )
    found = build(doc("mine.py", mine), [doc("other.py", other)])
    assert all(s.score < 0.25 for s in found)  # similar text at most, no definition bonus
    found = build(doc("user.py", "def show(o):\n    o.render("), [doc("other.py", other)])
    assert "def render(self, page)" in found[0].text
    assert found[0].score > 1


def test_definitions_bring_their_decorators_and_doc_comments() -> None:
    source = "x = 1\n\n@cache\n# the yearly rate\ndef compute_tax_rate(region):\n    return 1\n"
    found = build(doc("b.py", "rate = compute_"), [doc("taxes.py", source)])
    assert found[0].text.startswith("@cache\n# the yearly rate\ndef compute_tax_rate")


def test_only_files_of_a_related_language_are_used() -> None:
    definition = "export function computeTaxRate(region) {\n  return 1;\n}\n"
    current = doc("app.tsx", "const rate = computeTax", "typescriptreact")
    found = build(
        current,
        [
            doc("taxes.js", definition, "javascript"),
            doc("taxes.py", "def computeTaxRate(region):\n    return 1\n"),
            doc("notes.md", "computeTaxRate is defined in taxes.js\n", "markdown"),
        ],
    )
    assert [s.filename for s in found] == ["taxes.js"]


def test_c_sources_and_headers_share_definitions() -> None:
    header = doc("tax.h", "double compute_tax_rate(const char *region, int year);\n", "c")
    found = build(doc("main.cpp", "double r = compute_", "cpp"), [header])
    assert found and found[0].filename == "tax.h"


def test_a_missing_language_is_taken_from_the_file_extension() -> None:
    found = build(doc("billing.py", "rate = compute_"), [doc("taxes.py", TAXES, language="")])
    assert found and found[0].filename == "taxes.py"


def test_distant_parts_of_the_current_file_are_offered_but_never_the_prompts_own_lines() -> None:
    filler = "".join(f"step_{i} = step_{i - 1} + 1\n" for i in range(1, 200))
    text = TAXES + filler + "def invoice(order):\n    rate = compute_"
    current = doc("billing.py", text)
    last = len(current.lines) - 1
    found = build(current, line=last, prompt_lines=(last - 50, last))
    assert found[0].origin == "current"
    assert found[0].text.startswith("def compute_tax_rate")
    assert all("step_190 =" not in s.text for s in found)
    # With the definition inside the prompt there is nothing worth repeating.
    assert not [s for s in build(current) if "compute_tax_rate" in s.text]


def test_imported_files_are_candidates_and_open_copies_take_precedence() -> None:
    current = doc("billing.py", "from taxes import compute_tax_rate\nrate = compute_")
    imported = [ImportedFile("taxes.py", "python", TAXES)]
    found = build(current, imported=imported)
    assert (found[0].filename, found[0].origin) == ("taxes.py", "import")
    edited = TAXES.replace("region, year", "region, year, level")
    found = build(current, [doc("taxes.py", edited)], imported=imported)
    assert found[0].origin == "open"
    assert "level" in found[0].text
    assert all(s.origin == "open" for s in found)


def test_the_window_most_like_the_cursor_ranks_first_and_unrelated_text_is_left_out() -> None:
    related = "\n".join(
        ["x = 0"] * 30
        + ["def ship(parcel, carrier, weight):", "    label = carrier.label(parcel, weight)"]
        + ["y = 0"] * 30
    )
    unrelated = "\n".join(f"alpha_{i} = beta_{i}" for i in range(60))
    current = doc("c.py", "def send(parcel, carrier):\n    label = carrier.label(parcel, ")
    found = build(current, [doc("u.py", unrelated), doc("r.py", related)])
    assert [s.filename for s in found] == ["r.py"]
    assert "carrier.label(parcel, weight)" in found[0].text


def test_a_snippet_too_long_for_what_is_left_keeps_its_first_lines() -> None:
    body = "".join(f"    step_{i} = compute_tax_rate(region, year) + {i}\n" for i in range(15))
    source = "def compute_tax_rate(region, year):\n" + body
    found = build(doc("b.py", "rate = compute_"), [doc("t.py", source)], max_chars=200)
    assert found[0].text.startswith("def compute_tax_rate(region, year):\n")
    assert len(found[0].text) <= 200
    assert sum(len(s.text) for s in found) <= 200


def test_the_index_follows_the_version_not_the_text() -> None:
    builder = ContextBuilder()
    current = doc("b.py", "rate = compute_")
    lines = TAXES.splitlines(True)
    taxes = SourceDocument("file:///w/taxes.py", "taxes.py", "python", 1, lines)
    first = build(current, [taxes], builder=builder)
    lines[5] = "def compute_tax_level(region, year):\n"  # edited in place, version unchanged
    assert build(current, [taxes], builder=builder) == first
    newer = SourceDocument(taxes.uri, taxes.name, taxes.language, 2, lines)
    assert "compute_tax_level" in build(current, [newer], builder=builder)[0].text


def test_documents_not_passed_again_are_forgotten() -> None:
    builder = ContextBuilder()
    current = doc("b.py", "rate = compute_")
    build(current, [doc("taxes.py", TAXES), doc("other.py", TAXES)], builder=builder)
    build(current, [doc("taxes.py", TAXES)], builder=builder)
    assert sorted(builder._indexes) == ["file:///w/b.py", "file:///w/taxes.py"]


def test_documents_never_seen_are_indexed_a_few_per_build() -> None:
    # Opening many files must not stall one keystroke: the first build indexes what its
    # budget allows, later builds the rest.
    filler = "".join(f"value_{i} = {i}\n" for i in range(1_500))
    others = [doc(f"f{i}.py", filler) for i in range(3)] + [doc("taxes.py", TAXES)]
    builder = ContextBuilder()
    current = doc("b.py", "rate = compute_")
    seen = [bool(build(current, others, builder=builder)) for _ in range(5)]
    assert seen[0] is False
    assert seen[-1] is True


def test_prompt_lines_counts_every_kind_of_line_break() -> None:
    assert prompt_lines("a\nb\r\nc\rd", "e\nf", 10) == (7, 11)
    assert prompt_lines("", "", 0) == (0, 0)


# Hypothesis: documents of lines drawn from a small vocabulary, so that windows share names.
WORDS = ["alpha", "beta", "gamma", "delta", "total", "order", "rate", "region", "year", "tax"]
_line = st.one_of(
    st.builds(
        lambda a, b: f"def {a}_{b}(order, rate):\n", st.sampled_from(WORDS), st.sampled_from(WORDS)
    ),
    st.builds(
        lambda a, b, c: f"    {a} = {b}({c}, total)\n",
        st.sampled_from(WORDS),
        st.sampled_from(WORDS),
        st.sampled_from(WORDS),
    ),
    st.just("\n"),
)
lines_strategy = st.lists(_line, min_size=0, max_size=120)


def unique(lines: list[str], tag: str) -> list[str]:
    """Lines made distinct, so that a snippet's lines tell where they came from."""
    return [f"{line.rstrip()}  # {tag}{i}\n" for i, line in enumerate(lines)]


@settings(max_examples=60)
@given(
    st.lists(st.lists(_line, min_size=10, max_size=120), min_size=1, max_size=4),
    lines_strategy,
    st.integers(min_value=0, max_value=2_500),
)
def test_packing_stays_in_budget_never_overlaps_and_is_best_first(
    others: list[list[str]], current: list[str], max_chars: int
) -> None:
    docs = [
        SourceDocument(f"file:///w/d{i}.py", f"d{i}.py", "python", 1, unique(lines, f"d{i}_"))
        for i, lines in enumerate(others)
    ]
    mine = [*unique(current, "c"), "x = total_"]
    cur = SourceDocument("file:///w/c.py", "c.py", "python", 1, mine)
    at = len(mine) - 1
    found = ContextBuilder().build(
        cur, line=at, prompt_lines=(max(0, at - 30), at), others=docs, max_chars=max_chars
    )
    assert sum(len(s.text) for s in found) <= max_chars
    taken: dict[str, set[str]] = {}
    for s in found:
        rows = set(s.text.split("\n"))
        assert not rows & taken.get(s.filename, set()), "two snippets of one file overlap"
        taken.setdefault(s.filename, set()).update(rows)
    assert [s.score for s in found] == sorted((s.score for s in found), reverse=True)
    again = ContextBuilder().build(
        cur, line=at, prompt_lines=(max(0, at - 30), at), others=docs, max_chars=max_chars
    )
    assert again == found


def decoded(
    index: NameIndex,
) -> tuple[list[frozenset[str]], list[set[str]], dict[str, tuple[int, ...]]]:
    """What an index holds, independent of how its names are numbered."""
    names = {bit: name for name, bit in index.bits.items()}

    def expand(mask: int) -> set[str]:
        return {name for bit, name in names.items() if mask & bit}

    assert [expand(info[2]) for info in index.infos] == [set(info[0]) for info in index.infos]
    lines = [frozenset(info[0]) for info in index.infos]
    return lines, [expand(w) for w in index.windows], index.defs


_edit = st.tuples(
    st.integers(min_value=0, max_value=130),  # where
    st.integers(min_value=0, max_value=3),  # how many lines go
    st.lists(_line, max_size=3),  # what comes in
)


@settings(max_examples=80)
@given(lines_strategy, st.lists(_edit, min_size=1, max_size=8), st.booleans())
def test_an_index_built_from_the_previous_version_equals_one_built_from_nothing(
    start: list[str], edits: list[tuple[int, int, list[str]]], renumber_often: bool
) -> None:
    slack = name_index.RENUMBER_SLACK
    name_index.RENUMBER_SLACK = 0 if renumber_often else slack
    try:
        lines = list(start)
        index = NameIndex(0, lines, "python", None)
        for version, (at, gone, new) in enumerate(edits, start=1):
            at = min(at, len(lines))
            lines[at : at + gone] = new  # in place, as Document.apply edits its list
            index = NameIndex(version, lines, "python", index)
            fresh = NameIndex(version, lines, "python", None)
            assert decoded(index) == decoded(fresh)
            assert index.sizes == fresh.sizes
            assert index.names == fresh.names
    finally:
        name_index.RENUMBER_SLACK = slack
