"""Prompt building for native FIM APIs and for chat models."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.core.prompts import (
    CURSOR,
    chat_context,
    chat_fim_messages,
    comment_line,
    context_comment,
    fim_parts,
    repo_fim_prompt,
)
from reaper_lsp.core.snippets import Snippet
from reaper_lsp.core.types import CompletionContext


def ctx(
    prefix: str = "def add(a, b):\n    ", suffix: str = "\n", lang: str = "python"
) -> CompletionContext:
    return CompletionContext(prefix=prefix, suffix=suffix, language=lang, path="src/demo.py")


def test_fim_prompt_starts_with_a_path_comment_in_the_files_syntax() -> None:
    prompt, suffix = fim_parts(ctx())
    assert prompt == "# Path: src/demo.py\ndef add(a, b):\n    "
    assert suffix == "\n"


def test_comment_syntax_follows_the_language() -> None:
    assert comment_line("rust", "x") == "// x"
    assert comment_line("lua", "x") == "-- x"
    assert comment_line("html", "x") == "<!-- x -->"
    assert comment_line("unknown-language", "x") == "// x"


def test_chat_prompt_marks_the_cursor_between_prefix_and_suffix() -> None:
    system, user = chat_fim_messages(ctx("a = ", "\nprint(a)\n"), multiline=False)
    assert CURSOR in system
    assert f"a = {CURSOR}\nprint(a)\n" in user
    assert "current line only" in user
    _, multi = chat_fim_messages(ctx(), multiline=True)
    assert "several lines" in multi


def test_chat_system_prompt_does_not_change_with_the_code() -> None:
    # A stable first message lets providers reuse their prompt cache across keystrokes.
    assert (
        chat_fim_messages(ctx("x"), multiline=True)[0]
        == chat_fim_messages(ctx("y"), multiline=False)[0]
    )


def test_fim_templates_follow_the_model_family() -> None:
    from reaper_lsp.core.prompts import raw_fim_prompt

    assert raw_fim_prompt("qwen2.5-coder:1.5b", "a(", ")") == (
        "<|fim_prefix|>a(<|fim_suffix|>)<|fim_middle|>"
    )
    assert raw_fim_prompt("starcoder2:3b", "p", "s") == "<fim_prefix>p<fim_suffix>s<fim_middle>"
    assert raw_fim_prompt("codellama:7b-code", "p", "s") == "<PRE> p <SUF>s <MID>"
    assert raw_fim_prompt("codestral:22b", "p", "s") == "[SUFFIX]s[PREFIX]p"
    assert raw_fim_prompt("hf.co/TheBloke/deepseek-coder-1.3b", "p", "s") == (
        "<\uff5cfim\u2581begin\uff5c>p<\uff5cfim\u2581hole\uff5c>s<\uff5cfim\u2581end\uff5c>"
    )
    assert raw_fim_prompt("llama3.2:3b", "p", "s") is None  # no FIM tokens known


def test_fim_template_keeps_code_that_looks_like_its_placeholders() -> None:
    from reaper_lsp.core.prompts import raw_fim_prompt

    code = 'f"{prefix}{suffix}" \\1 \\0'
    assert raw_fim_prompt("qwen2.5-coder", code, "{x}") == (
        f"<|fim_prefix|>{code}<|fim_suffix|>{{x}}<|fim_middle|>"
    )


# Snippets of other files: as comments, as repository-level FIM, as a chat block.

TAX = Snippet("taxes.py", "def compute_tax_rate(region, year):\n\n    return 0.2", 1.5, "open")
UTIL = Snippet("util.py", "def round_cents(x):\n    return round(x, 2)", 0.3, "import")


def test_context_comment_heads_each_snippet_with_its_path_best_nearest_the_code() -> None:
    assert context_comment([TAX, UTIL], "python") == (
        "# Path: util.py\n"
        "# def round_cents(x):\n"
        "#     return round(x, 2)\n"
        "# Path: taxes.py\n"
        "# def compute_tax_rate(region, year):\n"
        "#\n"
        "#     return 0.2\n"
    )
    assert context_comment([UTIL], "rust").startswith("// Path: util.py\n// def round_cents")
    assert context_comment([], "python") == ""


@given(st.lists(st.text(alphabet=st.characters(exclude_characters="\r\n")), max_size=8))
def test_context_comment_comments_out_every_line(rows: list[str]) -> None:
    text = context_comment([Snippet("a.py", "\n".join(rows), 1.0, "open")], "python")
    lines = text.split("\n")
    assert lines[-1] == ""
    assert len(lines) - 1 == 1 + max(1, len(rows))
    assert all(line.startswith("#") for line in lines[:-1])


def test_repo_fim_prompt_writes_qwen25_coders_repository_format() -> None:
    prompt = repo_fim_prompt(
        "qwen2.5-coder:1.5b", "billing.py", [TAX, UTIL], "rate = ", "\n", repo_name="shop"
    )
    assert prompt == (
        "<|repo_name|>shop\n"
        "<|file_sep|>util.py\ndef round_cents(x):\n    return round(x, 2)\n"
        "<|file_sep|>taxes.py\ndef compute_tax_rate(region, year):\n\n    return 0.2\n"
        "<|file_sep|>billing.py\n<|fim_prefix|>rate = <|fim_suffix|>\n<|fim_middle|>"
    )


def test_repo_fim_prompt_writes_starcoder2s_repository_format() -> None:
    prompt = repo_fim_prompt("bigcode/starcoder2-3b", "billing.py", [UTIL], "a", "b", repo_name="s")
    assert prompt == (
        "<repo_name>s"
        "<file_sep>util.py\ndef round_cents(x):\n    return round(x, 2)\n"
        "<file_sep><fim_prefix>billing.py\na<fim_suffix>b<fim_middle>"
    )


def test_repo_fim_prompt_is_none_for_families_without_a_repository_format() -> None:
    for model in ("codellama:7b-code", "deepseek-coder:1.3b", "starcoder:1b", "qwen2.5:7b"):
        assert repo_fim_prompt(model, "a.py", [TAX], "p", "s") is None


def test_repo_fim_prompt_leaves_out_a_snippet_that_spells_its_markers() -> None:
    tricky = Snippet("prompts.py", 'T = "<|fim_prefix|>{p}"', 2.0, "open")
    prompt = repo_fim_prompt("Qwen/Qwen2.5-Coder-7B", "a.py", [tricky, TAX], "p", "s")
    assert prompt is not None
    assert "prompts.py" not in prompt
    assert "taxes.py" in prompt
    assert prompt.count("<|fim_prefix|>") == 1


def test_chat_context_puts_each_snippet_under_its_path_in_a_code_block() -> None:
    block = chat_context([TAX, UTIL])
    assert block.index("File: taxes.py\n<code>\ndef compute_tax_rate") < block.index(
        "File: util.py"
    )
    assert block.endswith("</code>\n\n")
    assert chat_context([]) == ""


def test_fim_parts_put_the_snippets_as_comments_ahead_of_the_files_own_path_line() -> None:
    prompt, suffix = fim_parts(ctx(), [TAX])
    assert prompt == (
        "# Path: taxes.py\n# def compute_tax_rate(region, year):\n#\n#     return 0.2\n"
        "# Path: src/demo.py\ndef add(a, b):\n    "
    )
    assert suffix == "\n"


def test_chat_messages_show_the_snippets_in_the_user_message_the_system_one_stays() -> None:
    system, user = chat_fim_messages(ctx(), multiline=False, snippets=[TAX])
    assert system == chat_fim_messages(ctx(), multiline=False)[0]  # cacheable upstream
    assert user.startswith(chat_context([TAX]) + "File: src/demo.py (python)\n<code>\n")
