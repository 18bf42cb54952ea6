"""Prompt building for native FIM APIs and for chat models."""

from __future__ import annotations

from reaper_lsp.core.prompts import CURSOR, chat_fim_messages, comment_line, fim_parts
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
