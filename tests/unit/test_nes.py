"""Next-edit suggestions: the edit history, renames carried to the other uses of a name, and the
chat-model prompt and answer format."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from reaper_lsp.core.document import Change, Document, Position
from reaper_lsp.core.nes import (
    Edit,
    EditHistory,
    NextEdit,
    NextEditProposal,
    change_to_edit,
    rename_edits,
)
from reaper_lsp.core.nes_prompt import nes_messages, nes_region, parse_nes_answer

URI = "file:///work/calc.py"


class Editor:
    """A document edited keystroke by keystroke, each change recorded the way the server does."""

    def __init__(self, text: str, language: str = "python", path: str = "calc.py") -> None:
        self.doc = Document(URI, language, 1, text)
        self.history = EditHistory()
        self.path = path

    def change(self, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        change = Change(text, Position(*start), Position(*end))
        version = self.doc.version + 1
        edit = change_to_edit(self.doc.lines, change, version)
        self.doc.apply(change)
        self.doc.version = version
        if edit is not None:
            self.history.record(URI, edit)

    def type(self, line: int, col: int, text: str) -> int:
        for ch in text:
            self.change((line, col), (line, col), ch)
            col += 1
        return col

    def backspace(self, line: int, col: int, times: int = 1) -> int:
        for _ in range(times):
            self.change((line, col - 1), (line, col), "")
            col -= 1
        return col

    def retype_word(self, line: int, col: int, old: str, new: str) -> int:
        """Vim's `ciw` then the new name typed letter by letter; returns the cursor column."""
        assert self.doc.line_text(line)[col : col + len(old)] == old
        self.change((line, col), (line, col + len(old)), "")
        return self.type(line, col, new)

    def proposals(self, cursor: tuple[int, int]) -> NextEditProposal:
        return rename_edits(
            self.history.edits(URI),
            self.doc.lines,
            self.doc.version,
            Position(*cursor),
            self.doc.language_id,
            self.path,
        )

    def accept(self, edits: Sequence[NextEdit]) -> None:
        """Apply proposals as an editor would, later ones first, each recorded as a change."""
        for e in sorted(edits, key=lambda e: (e.start_line, e.start_character), reverse=True):
            self.change((e.start_line, e.start_character), (e.end_line, e.end_character), e.text)


def text_between(doc: Document, start: tuple[int, int], end: tuple[int, int]) -> str:
    (sl, si), (el, ei) = doc.clamp(Position(*start)), doc.clamp(Position(*end))
    if sl == el:
        return doc.lines[sl][si:ei]
    return doc.lines[sl][si:] + "".join(doc.lines[sl + 1 : el]) + doc.lines[el][:ei]


def applied(text: str, edits: Sequence[NextEdit]) -> str:
    doc = Document(URI, "python", 1, text)
    for e in sorted(edits, key=lambda e: (e.start_line, e.start_character), reverse=True):
        doc.apply(
            Change(
                e.text,
                Position(e.start_line, e.start_character),
                Position(e.end_line, e.end_character),
            )
        )
    return doc.text


# --- the history ------------------------------------------------------------------------------


def test_a_name_retyped_letter_by_letter_is_one_edit() -> None:
    ed = Editor("value = old_name + 1\n")
    ed.retype_word(0, 8, "old_name", "new_name")
    assert ed.history.edits(URI) == (Edit(0, 8, "old_name", "new_name", ed.doc.version),)


def test_typos_fixed_with_backspace_stay_in_the_same_edit() -> None:
    ed = Editor("x = 1\n")
    col = ed.type(0, 5, " + tota")
    col = ed.backspace(0, col, 2)
    ed.type(0, col, "tal")
    assert [(e.old, e.new) for e in ed.history.edits(URI)] == [("", " + total")]


def test_typing_then_erasing_everything_leaves_no_edit() -> None:
    ed = Editor("x = 1\n")
    col = ed.type(0, 5, "abc")
    ed.backspace(0, col, 3)
    assert ed.history.edits(URI) == ()


def test_backspacing_a_word_away_is_one_deletion() -> None:
    ed = Editor("total = count\n")
    ed.backspace(0, 13, 5)
    assert [(e.character, e.old, e.new) for e in ed.history.edits(URI)] == [(8, "count", "")]


def test_a_non_identifier_character_after_a_word_starts_a_new_edit() -> None:
    ed = Editor("\n")
    ed.type(0, 0, "name(x")
    assert [e.new for e in ed.history.edits(URI)] == ["name", "(x"]


def test_history_keeps_the_last_ten_edits_per_document() -> None:
    ed = Editor("\n" * 20)
    for line in range(15):
        ed.type(line, 0, "x")
    assert [e.line for e in ed.history.edits(URI)] == list(range(5, 15))


def test_history_forgets_the_least_recent_documents() -> None:
    history = EditHistory(max_documents=2)
    for uri in ("a", "b", "c"):
        history.record(uri, Edit(0, 0, "", "x", 2))
    assert history.edits("a") == () and history.edits("c") != ()


def test_older_edits_follow_lines_inserted_above_them() -> None:
    ed = Editor("a\nb\nc\n")
    ed.type(2, 1, "dd")
    ed.change((0, 0), (0, 0), "new line\nsecond\n")
    moved = ed.history.edits(URI)[0]
    assert (moved.line, moved.character, moved.new) == (4, 1, "dd")
    assert ed.doc.line_text(4) == "cdd"


def test_an_edit_overwritten_by_a_later_one_is_dropped() -> None:
    ed = Editor("alpha\nbeta\n")
    ed.type(0, 5, "X")
    ed.type(1, 0, "Y")
    ed.change((0, 3), (0, 6), "")
    assert [e.new for e in ed.history.edits(URI)] == ["Y", ""]


def test_a_ranged_change_reads_the_text_it_replaces() -> None:
    lines = Document(URI, "python", 1, "one\ntwo\nthree\n").lines
    edit = change_to_edit(lines, Change("2", Position(0, 2), Position(2, 1)), 2)
    assert edit == Edit(0, 2, "e\ntwo\nt", "2", 2)


def test_a_whole_document_change_becomes_the_smallest_edit_in_utf16() -> None:
    lines = Document(URI, "python", 1, "s = '😀'; old = 1\nprint(old)\n").lines
    edit = change_to_edit(lines, Change("s = '😀'; new = 1\nprint(old)\n"), 2)
    assert edit == Edit(0, 10, "old", "new", 2)
    assert change_to_edit(lines, Change("s = '😀'; old = 1\nprint(old)\n"), 2) is None


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ix<>b"), st.sampled_from("ab_(. \n")), max_size=40))
def test_every_recorded_edit_points_at_its_text_in_the_document(
    keys: list[tuple[str, str]],
) -> None:
    ed = Editor("alpha beta\ngamma\n")
    line, col = 0, 5
    for key, ch in keys:
        text = ed.doc.line_text(line)
        if key == "i":
            ed.change((line, col), (line, col), ch)
            line, col = (line + 1, 0) if ch == "\n" else (line, col + 1)
        elif key == "x" and col < len(text):
            ed.change((line, col), (line, col + 1), "")
        elif key == "b" and col > 0:
            col = ed.backspace(line, col)
        elif key in "<>":
            col = max(0, min(len(text), col + (1 if key == ">" else -1)))
    for edit in ed.history.edits(URI):
        assert text_between(ed.doc, edit.start, edit.end) == edit.new


# --- renames carried to the other uses --------------------------------------------------------

CALC = '''\
def total(items, rate):
    """Sum items at rate; rate is a fraction."""
    result = 0
    for item in items:
        result += item * rate  # rate applies per item
    return result * rate


def other(rate):
    return rate + 1
'''


def test_renaming_a_parameter_renames_its_uses_in_that_function_only() -> None:
    ed = Editor(CALC)
    ed.retype_word(0, 17, "rate", "tax")
    proposal = ed.proposals((5, 0))
    assert proposal.version == ed.doc.version
    assert applied(ed.doc.text, proposal.edits) == CALC.replace(
        "def total(items, rate)", "def total(items, tax)"
    ).replace("item * rate  #", "item * tax  #").replace("result * rate", "result * tax")


def test_the_first_proposal_is_the_next_use_after_the_rename() -> None:
    ed = Editor(CALC)
    ed.retype_word(0, 17, "rate", "tax")
    first = ed.proposals((5, 0)).edits[0]
    assert first == NextEdit(4, 25, 4, 29, "tax")


def test_a_rename_sent_as_whole_documents_is_recognised_too() -> None:
    """copilot.vim under Vim sends the whole buffer before every request."""
    ed = Editor(CALC)
    for word in ("", "t", "ta", "tax"):
        text = CALC.replace("def total(items, rate)", f"def total(items, {word})", 1)
        edit = change_to_edit(ed.doc.lines, Change(text), ed.doc.version + 1)
        ed.doc.apply(Change(text))
        ed.doc.version += 1
        assert edit is not None
        ed.history.record(URI, edit)
    assert [(e.old, e.new) for e in ed.history.edits(URI)] == [("rate", "tax")]
    assert len(ed.proposals((5, 0)).edits) == 2


def test_renaming_a_local_stays_in_its_function() -> None:
    src = (
        "def f():\n    count = 0\n    count += 1\n    return count\n\n"
        "def g():\n    count = 5\n    return count\n"
    )
    ed = Editor(src)
    ed.retype_word(1, 4, "count", "n")
    after = applied(ed.doc.text, ed.proposals((0, 0)).edits)
    assert after == src.replace("count", "n", 3)


def test_renaming_an_attribute_renames_self_x_in_the_class_but_not_a_variable_x() -> None:
    src = (
        "class Point:\n"
        "    def __init__(self, x):\n"
        "        self.x = x\n"
        "\n"
        "    def norm(self):\n"
        "        return abs(self.x)\n"
        "\n"
        "    def shifted(self, x):\n"
        "        return self.x + x\n"
    )
    ed = Editor(src)
    ed.retype_word(2, 13, "x", "y")
    after = applied(ed.doc.text, ed.proposals((8, 0)).edits)
    assert after == src.replace("self.x", "self.y")


def test_a_module_level_name_is_renamed_in_the_whole_file() -> None:
    src = (
        "LIMIT = 10\n\ndef check(v):\n    return v < LIMIT\n\n"
        "def clamp(v):\n    return min(v, LIMIT)\n"
    )
    ed = Editor(src)
    ed.retype_word(0, 0, "LIMIT", "CAP")
    assert applied(ed.doc.text, ed.proposals((5, 0)).edits) == src.replace("LIMIT", "CAP")


def test_renaming_a_function_renames_its_callers() -> None:
    src = "def area(r):\n    return 3.14 * r * r\n\nprint(area(2))\nx = area(3)\n"
    ed = Editor(src)
    ed.retype_word(0, 4, "area", "disc_area")
    assert applied(ed.doc.text, ed.proposals((2, 0)).edits) == src.replace("area", "disc_area")


def test_a_keyword_argument_of_another_call_is_not_renamed() -> None:
    src = "def f(name):\n    g(name=name)\n    return name\n"
    ed = Editor(src)
    ed.retype_word(0, 6, "name", "title")
    after = applied(ed.doc.text, ed.proposals((2, 0)).edits)
    assert after == "def f(title):\n    g(name=title)\n    return title\n"


JS = """\
function scale(value, factor) {
  const label = "factor"; // factor, in a comment
  return value * factor;
}

function other(factor) {
  return factor;
}
"""


def test_a_brace_language_parameter_is_renamed_in_its_body_skipping_strings_and_comments() -> None:
    ed = Editor(JS, language="javascript", path="scale.js")
    ed.retype_word(0, 22, "factor", "k")
    after = applied(ed.doc.text, ed.proposals((6, 0)).edits)
    assert after == JS.replace("value, factor)", "value, k)").replace("value * factor", "value * k")


def test_a_brace_language_field_is_renamed_in_its_class() -> None:
    src = "class A {\n  constructor() { this.n = 0; }\n  inc() { this.n += 1; }\n}\nconst n = 2;\n"
    ed = Editor(src, language="typescript", path="a.ts")
    ed.retype_word(1, 23, "n", "count")
    after = applied(ed.doc.text, ed.proposals((4, 0)).edits)
    assert after == src.replace("this.n", "this.count")


def test_a_rename_still_being_typed_proposes_nothing_until_the_cursor_leaves() -> None:
    ed = Editor(CALC)
    col = ed.retype_word(0, 17, "rate", "tax")
    assert ed.proposals((0, col)).edits == ()
    assert ed.proposals((0, col - 1)).edits != ()  # Esc in Vim steps back onto the word


def test_a_non_identifier_character_typed_after_the_new_name_ends_the_rename() -> None:
    ed = Editor("def f(a):\n    return a\n")
    col = ed.retype_word(0, 6, "a", "b")
    col = ed.type(0, col, ", c")
    assert [e.text for e in ed.proposals((0, col)).edits] == ["b"]


def test_a_name_that_occurs_nowhere_else_gets_no_proposal() -> None:
    ed = Editor("def f():\n    lonely = 1\n    return 2\n")
    ed.retype_word(1, 4, "lonely", "single")
    assert ed.proposals((2, 0)).edits == ()


def test_once_every_use_is_renamed_nothing_is_proposed_again() -> None:
    ed = Editor(CALC)
    ed.retype_word(0, 17, "rate", "tax")
    ed.accept(ed.proposals((5, 0)).edits)
    assert ed.proposals((5, 0)).edits == ()
    assert "tax" in ed.doc.line_text(5)


def test_typing_a_new_word_is_not_a_rename() -> None:
    ed = Editor("def f(a):\n    return a\n")
    ed.type(1, 12, " + total")
    assert ed.proposals((0, 0)).edits == ()


def test_edits_for_a_document_that_changed_meanwhile_are_stale() -> None:
    ed = Editor(CALC)
    ed.retype_word(0, 17, "rate", "tax")
    proposal = ed.proposals((5, 0))
    assert not proposal.is_stale(ed.doc.version)
    ed.type(9, 0, "#")
    assert proposal.is_stale(ed.doc.version)


# --- chat models: the prompt and the answer ---------------------------------------------------

NUMBERS = "".join(f"line {n}\n" for n in range(1, 61))


def test_the_prompt_shows_recent_edits_as_a_diff_and_numbered_code_around_the_cursor() -> None:
    ed = Editor(CALC)
    ed.retype_word(0, 17, "rate", "tax")
    system, user = nes_messages(
        ed.history.edits(URI), ed.doc.lines, Position(4, 8), "python", "calc.py"
    )
    assert "<<<<<<< lines A-B" in system and "NONE" in system
    assert "-def total(items, rate):\n+def total(items, tax):" in user
    assert " 5 |         result += item * rate  # rate applies per item" in user
    assert "line 5, column 9" in user and "calc.py (python)" in user


def test_the_region_is_twenty_lines_either_side_of_the_cursor() -> None:
    assert nes_region(60, 30) == (10, 50)
    assert nes_region(60, 2) == (0, 22)
    assert nes_region(0, 0) == (0, 0)
    _, user = nes_messages((), Document(URI, "text", 1, NUMBERS).lines, Position(30, 0), "", "")
    assert "11 | line 11" in user and "51 | line 51" in user and "| line 52" not in user


def test_a_well_formed_answer_becomes_edits_that_apply() -> None:
    lines = Document(URI, "python", 1, CALC).lines
    answer = (
        "<<<<<<< lines 5-6\n"
        "        result += item * rate  # rate applies per item\n"
        "    return result * rate\n"
        "=======\n"
        "        result += item * tax  # rate applies per item\n"
        "    return result * tax\n"
        ">>>>>>>\n"
    )
    edits = parse_nes_answer(answer, lines, (0, 9))
    assert edits == [NextEdit(4, 25, 4, 29, "tax"), NextEdit(5, 20, 5, 24, "tax")]


def test_answers_with_fences_numbers_and_crlf_still_parse() -> None:
    lines = Document(URI, "python", 1, "a = 1\r\nb = 2\r\n").lines
    answer = (
        "Sure!\r\n```\r\n<<<<<<< lines 2-2\r\n2 | b = 2\r\n=======\r\n2 | b = 3\r\n>>>>>>>\r\n```"
    )
    assert parse_nes_answer(answer, lines, (0, 1)) == [NextEdit(1, 4, 1, 5, "3")]


def test_inserted_and_deleted_lines_apply_as_intended() -> None:
    src = "a\nb\nc\n"
    lines = Document(URI, "python", 1, src).lines
    insert = "<<<<<<< lines 1-1\na\n=======\na\nnew\n>>>>>>>"
    delete = "<<<<<<< lines 3-3\nc\n=======\n>>>>>>>"
    assert applied(src, parse_nes_answer(insert, lines, (0, 3))) == "a\nnew\nb\nc\n"
    assert applied(src, parse_nes_answer(delete, lines, (0, 3))) == "a\nb\n"


def test_garbage_prose_and_none_give_no_edits() -> None:
    lines = Document(URI, "python", 1, CALC).lines
    for answer in ("NONE", "I would rename rate to tax.", "<<<<<<< lines 1-1\nhalf a block", ""):
        assert parse_nes_answer(answer, lines, (0, 9)) == []


def test_blocks_outside_the_region_or_not_matching_the_document_are_dropped() -> None:
    lines = Document(URI, "python", 1, NUMBERS).lines
    outside = "<<<<<<< lines 45-45\nline 45\n=======\nLINE\n>>>>>>>"
    wrong = "<<<<<<< lines 12-12\nline 99\n=======\nLINE\n>>>>>>>"
    assert parse_nes_answer(outside, lines, (10, 30)) == []
    assert parse_nes_answer(wrong, lines, (10, 30)) == []


def test_overlapping_blocks_keep_the_first() -> None:
    lines = Document(URI, "python", 1, NUMBERS).lines
    answer = (
        "<<<<<<< lines 3-4\nline 3\nline 4\n=======\nthree\nfour\n>>>>>>>\n"
        "<<<<<<< lines 4-4\nline 4\n=======\nFOUR\n>>>>>>>\n"
    )
    edits = parse_nes_answer(answer, lines, (0, 59))
    assert applied(NUMBERS, edits).startswith("line 1\nline 2\nthree\nfour\nline 5\n")


MARKERS = st.sampled_from(
    ["<<<<<<< lines 1-2", "<<<<<<< line 3", "=======", ">>>>>>>", "line 1", "line 2", "", "x"]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=400), st.lists(MARKERS, max_size=30).map("\n".join)))
def test_parsing_never_raises_and_only_edits_inside_the_region(answer: str) -> None:
    lines = Document(URI, "python", 1, NUMBERS).lines
    for edit in parse_nes_answer(answer, lines, (0, 3)):
        assert 0 <= edit.start_line <= edit.end_line <= 4
