"""The offline engine's index: finishing lines from similar ones, predicting the next line,
completing identifiers — fast on a large index, never blank, never repeating what is typed."""

from __future__ import annotations

import random
import time

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.core.offline import MAX_LINE, OfflineIndex, prepare
from reaper_lsp.core.types import CompletionContext


def ctx(prefix: str, suffix: str = "\n") -> CompletionContext:
    return CompletionContext(prefix, suffix, "python", "a.py")


def indexed(**sources: str) -> OfflineIndex:
    index = OfflineIndex()
    for name, text in sources.items():
        index.update(name, text)
    return index


# -- line continuation ----------------------------------------------------------------------------


def test_finishes_a_line_from_a_similar_one() -> None:
    index = indexed(x="total = calculate_total(items, tax_rate)\nprint(total)\n")
    assert index.suggest(ctx("def f():\n    total = calc")) == ["ulate_total(items, tax_rate)"]


def test_the_typed_text_is_never_part_of_the_suggestion() -> None:
    index = indexed(x="abab = compute(1)\n")
    assert index.suggest(ctx("ab")) == ["ab = compute(1)"]
    assert index.suggest(ctx("abab = ")) == ["compute(1)"]


def test_the_line_being_edited_is_not_its_own_suggestion() -> None:
    # The index still holds an older text of the cursor's line (line 1 of "cur").
    index = indexed(cur="x = 1\nvalue = compute(1, 2)\n")
    got = index.suggest(ctx("x = 1\nvalue = comp"), current_source="cur", current_line=1)
    assert got == ["ute"]  # the identifier is known, the line itself is not offered back
    assert index.suggest(ctx("x = 1\nvalue = comp"), current_source="cur", current_line=0) == [
        "ute(1, 2)"
    ]


def test_text_after_the_cursor_is_not_repeated() -> None:
    index = indexed(x="print(f'hello {name}')\nopen(path)\n")
    assert index.suggest(ctx("print(f'hel", "')\n")) == ["lo {name}"]
    assert index.suggest(ctx("open(pa", ")\n")) == ["th"]
    assert index.suggest(ctx("print(f'hel", "xyz\n")) == []  # nothing ends with "xyz"


def test_nearby_lines_of_the_same_document_win() -> None:
    other = "with open(path, 'rb') as raw:\n" * 2
    here = "\n".join(
        ["with open(path) as handle:", *["pass"] * 30, "with open(path, 'w') as out:", "", ""]
    )
    index = indexed(other=other, here=here)
    got = index.suggest(ctx("with open("), current_source="here", current_line=33)
    assert got == ["path, 'w') as out:"]


def test_diverging_candidates_give_the_part_they_agree_on() -> None:
    index = indexed(
        a="self.assertEqual(first, 1)\nself.assertEqual(second, 2)\nself.assertTrue(ok)\n",
        b="self.assertEqual(third, 3)\nself.assertIn(x, y)\n",
    )
    assert index.suggest(ctx("self.ass")) == ["ertEqual("]


def test_right_hand_sides_complete_a_new_assignment() -> None:
    index = indexed(x="total = calculate_total(items, tax_rate)\n")
    assert index.suggest(ctx("subtotal = calculate_t")) == ["otal(items, tax_rate)"]
    assert index.suggest(ctx("return calculate_t")) == ["otal(items, tax_rate)"]


# -- next line ------------------------------------------------------------------------------------


def test_next_line_after_a_known_line() -> None:
    index = indexed(x="import os\nimport sys\n\nfor item in items:\n    handle(item)\n")
    assert index.suggest(ctx("import json\nimport os\n")) == ["import sys"]
    assert index.suggest(ctx("for item in items:\n    ")) == ["handle(item)"]


def test_next_line_is_reindented_to_the_cursor() -> None:
    index = indexed(x="for item in items:\n    handle(item)\n")
    assert index.suggest(ctx("def f():\n    for item in items:\n")) == ["        handle(item)"]
    assert index.suggest(ctx("def f():\n    for item in items:\n        ")) == ["handle(item)"]


def test_next_line_brings_the_block_it_opens_when_multiline() -> None:
    index = indexed(
        x="try:\n    with open(path) as handle:\n        data = handle.read()\n    done()\n"
    )
    prefix = "def f():\n    try:\n        "
    assert index.suggest(ctx(prefix)) == [
        "with open(path) as handle:\n            data = handle.read()"
    ]
    assert index.suggest(ctx(prefix), multiline=False) == ["with open(path) as handle:"]


def test_next_line_does_not_repeat_the_line_below_the_cursor() -> None:
    index = indexed(x="import os\nimport sys\n")
    assert index.suggest(ctx("import os\n", "\nimport sys\n")) == []


def test_next_line_skips_what_follows_the_cursor_in_its_own_document() -> None:
    index = indexed(cur="import os\nimport sys\n")
    assert index.suggest(ctx("import os\n"), current_source="cur", current_line=1) == []


def test_next_line_needs_agreement() -> None:
    index = indexed(x="start()\nalpha()\nstart()\nbeta()\nstart()\ngamma()\n")
    assert index.suggest(ctx("start()\n")) == []  # three different followers, one each


# -- identifiers ----------------------------------------------------------------------------------


def test_identifier_completion() -> None:
    index = indexed(x="configuration = load_configuration()\n")
    assert index.suggest(ctx("print(load_conf")) == ["iguration"]


def test_identifiers_of_the_current_document_come_first() -> None:
    index = indexed(
        other="calculator = 1\ncalculator += 1\ncalculator -= 1\n", cur="calculate_total(x)\n"
    )
    assert index.suggest(ctx("f(calc"), current_source="cur") == ["ulate_total"]
    assert index.suggest(ctx("f(calc")) == ["ulator"]


def test_no_identifier_completion_inside_a_word() -> None:
    index = indexed(x="configuration = 1\n")
    assert index.suggest(ctx("print(conf", "ig)\n")) == []


def test_several_suggestions_best_first() -> None:
    index = indexed(x="value = compute(1)\nvalue = compute(1)\nvalue = compose(2)\n")
    assert index.suggest(ctx("value = comp"), limit=3) == ["ute(1)", "ose(2)", "ute"]


# -- contents -------------------------------------------------------------------------------------


def test_update_replaces_and_remove_forgets() -> None:
    index = indexed(x="alpha_beta_gamma = 1\n")
    assert len(index) == 1 and "x" in index
    index.update("x", "delta_epsilon = 2\nzeta_eta = 3\n")
    assert len(index) == 2
    assert index.suggest(ctx("f(alpha_b")) == []
    assert index.suggest(ctx("f(delta_e")) == ["psilon"]
    index.remove("x")
    assert len(index) == 0 and index.stats() == {"sources": 0, "lines": 0, "identifiers": 0}
    assert index.suggest(ctx("f(delta_e")) == []


def test_binary_and_overlong_lines_are_skipped() -> None:
    index = indexed(bin="\x00\x01binary_stuff = 1\n", long="x" * (MAX_LINE + 10) + "\nok = 1\n")
    assert "bin" not in index
    assert len(index) == 1
    assert prepare("b", "text\x00more") is None


def test_total_lines_are_capped_by_evicting_the_oldest_source() -> None:
    index = OfflineIndex(max_lines=5)
    index.update("old", "a1 = 1\na2 = 2\na3 = 3\n")
    index.update("new", "b1 = 1\nb2 = 2\nb3 = 3\n")
    assert "old" not in index and "new" in index and len(index) == 3
    index.update("huge", "\n".join(f"c{i} = {i}" for i in range(10)))
    assert "huge" not in index and "new" in index


def test_line_windows_keep_their_line_numbers() -> None:
    index = OfflineIndex()
    index.update_lines("doc", ["first_value = 1\n", "first_value = 2\n"], first=100)
    got = index.suggest(ctx("first_value = "), current_source="doc", current_line=101)
    assert got == ["1"]


# -- speed ----------------------------------------------------------------------------------------


def synthetic_code(lines: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    words = ["self", "result", "value", "items", "compute", "total", "config", "handler", "data"]
    out = []
    for i in range(lines):
        a, b, c = rng.choice(words), rng.choice(words), rng.choice(words)
        indent = "    " * rng.randint(0, 3)
        out.append(f"{indent}{a}_{i % 300} = {b}.{c}_{i % 97}(arg_{i % 13}, {rng.choice(words)})")
    return out


def test_twenty_thousand_lines_answer_fast() -> None:
    index = OfflineIndex()
    code = synthetic_code(20_000)
    index.update("big.py", "\n".join(code[:10_000]))
    for n in range(100):  # and a workspace of small files
        index.update(f"f{n}.py", "\n".join(code[10_000 + n * 100 : 10_100 + n * 100]))
    assert len(index) == 20_000
    queries = [ctx(q) for q in ("result_42 = ", "self_1", "    data_", "x = config.", "ret")]
    queries.append(ctx(code[500] + "\n    "))
    start = time.perf_counter()
    for _ in range(20):
        for query in queries:
            index.suggest(query, current_source="big.py", current_line=500, limit=3)
    per_request = (time.perf_counter() - start) / (20 * len(queries))
    assert per_request < 0.005


# -- properties -----------------------------------------------------------------------------------

code_text = st.text(alphabet=st.sampled_from(list("abc_ =(),.:\n\t\r 1")), max_size=400)


@given(st.text(max_size=300), st.text(max_size=40), st.text(max_size=20))
def test_arbitrary_text_never_crashes(corpus: str, typed: str, after: str) -> None:
    index = indexed(x=corpus)
    for text in index.suggest(ctx(typed, after), limit=3, current_source="x", current_line=0):
        assert text.strip()


@given(code_text, code_text, st.text(alphabet="abc_ =()", max_size=6))
def test_suggestions_are_never_blank_and_never_repeat_the_typed_text(
    corpus: str, prefix: str, after: str
) -> None:
    index = indexed(x=corpus)
    context = ctx(prefix, after + "\n")
    line_prefix = context.line_prefix[context.line_prefix.rfind("\r") + 1 :]
    for text in index.suggest(context, limit=5):
        assert text.strip()
        if line_prefix.strip():
            assert "\n" not in text
            # It continues what is typed (its last character and the suggestion occur
            # together in the corpus), so the typed text was not repeated.
            assert line_prefix[-1] + text in corpus.replace("\r", "\n")
        if after.strip():
            assert not text.endswith(after.strip())


@given(st.lists(st.text(alphabet="abcd_=() .", min_size=1, max_size=30), min_size=1, max_size=30))
def test_typing_any_indexed_line_offers_only_its_possible_rests(lines: list[str]) -> None:
    index = indexed(x="\n".join(lines))
    stripped = [line.strip() for line in lines]
    for line in stripped:
        for cut in range(2, len(line)):
            typed = line[:cut]
            for text in index.suggest(ctx(typed), limit=3):
                assert any(s.startswith(typed + text) for s in stripped) or (
                    (typed[-1] + text) in "\n".join(stripped)
                )
