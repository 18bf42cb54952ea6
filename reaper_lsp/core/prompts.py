"""Prompt building: fill-in-the-middle for native FIM APIs, and an instruction prompt for chat
models that only see messages; snippets of other files in each of those forms.

The chat prompt puts the fixed instruction first and the volatile code last, so providers that
cache prompt prefixes can reuse the instruction across keystrokes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from reaper_lsp.core.types import CompletionContext

if TYPE_CHECKING:
    pass

CURSOR = "<cursor>"


class SnippetLike(Protocol):
    """Code from elsewhere a prompt shows (`core.snippets.Snippet`, `core.types.ContextSnippet`)."""

    @property
    def filename(self) -> str: ...

    @property
    def text(self) -> str: ...


_HASH_COMMENT = {
    "python", "ruby", "perl", "r", "shellscript", "sh", "bash", "zsh", "fish", "yaml", "toml",
    "makefile", "dockerfile", "elixir", "nim", "julia", "powershell", "coffeescript", "cmake",
    "crystal", "gdscript", "tcl", "conf", "ini", "raku",
}  # fmt: skip
_DASH_COMMENT = {"lua", "sql", "haskell", "elm", "ada", "vhdl", "purescript"}
_SEMI_COMMENT = {"lisp", "clojure", "scheme", "racket", "commonlisp", "fennel", "asm", "nasm"}
_PERCENT_COMMENT = {"erlang", "latex", "tex", "matlab", "octave", "prolog"}
_HTML_COMMENT = {"html", "xml", "markdown", "svg", "vue", "svelte", "xhtml"}
_QUOTE_COMMENT = {"vim", "vimscript"}

SYSTEM_PROMPT = (
    "You are a code completion engine inside a text editor. You are shown one file with the "
    f"marker {CURSOR} where the user's cursor is. Reply with exactly the text to insert at "
    f"{CURSOR}, nothing else: no explanation, no markdown fences, no repetition of the code "
    "before or after the cursor. Match the file's style and indentation. If nothing sensible "
    "can be inserted, reply with an empty message."
)


def comment_line(language: str, text: str) -> str:
    """`text` as a one-line comment in the file's language (C-style by default)."""
    lang = language.lower()
    if lang in _HASH_COMMENT:
        return f"# {text}"
    if lang in _DASH_COMMENT:
        return f"-- {text}"
    if lang in _SEMI_COMMENT:
        return f"; {text}"
    if lang in _PERCENT_COMMENT:
        return f"% {text}"
    if lang in _HTML_COMMENT:
        return f"<!-- {text} -->"
    if lang in _QUOTE_COMMENT:
        return f'" {text}'
    return f"// {text}"


def path_header(ctx: CompletionContext) -> str:
    """A `Path:` comment line naming the file, as Copilot-style FIM models expect."""
    if not ctx.path:
        return ""
    return comment_line(ctx.language, f"Path: {ctx.path}") + "\n"


def fim_parts(ctx: CompletionContext, snippets: Sequence[SnippetLike] = ()) -> tuple[str, str]:
    """(prompt, suffix) for APIs with a native `suffix` parameter: the snippets as comments,
    the file's `Path:` line, the prefix."""
    return context_comment(snippets, ctx.language) + path_header(ctx) + ctx.prefix, ctx.suffix


_FIM_TEMPLATES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("qwen", "codegemma"), "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>"),
    (("starcoder", "granite-code", "stable-code", "refact"),
     "<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>"),
    (("deepseek-coder",), "<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}"
                          "<｜fim▁end｜>"),
    (("codellama", "code-llama"), "<PRE> {prefix} <SUF>{suffix} <MID>"),
    (("codestral",), "[SUFFIX]{suffix}[PREFIX]{prefix}"),
)  # fmt: skip
"""FIM templates of the model families Ollama serves for code, matched on the model's name.
Ollama applies a model's own template only when `suffix` is non-empty; with `raw: true` the
client writes the template itself."""


def fim_template(model: str) -> str | None:
    """The FIM template (`{prefix}`, `{suffix}`) of `model`'s family, None when unknown."""
    name = model.lower().rpartition("/")[2]
    for markers, template in _FIM_TEMPLATES:
        if any(marker in name for marker in markers):
            return template
    return None


def raw_fim_prompt(model: str, prefix: str, suffix: str) -> str | None:
    """A whole FIM prompt for `model` written with its family's special tokens (Ollama's
    `raw: true`), or None when the family is unknown."""
    template = fim_template(model)
    if template is None:
        return None
    # Split on the placeholders rather than `format`: code is full of braces.
    parts = re.split(r"(\{prefix\}|\{suffix\})", template)
    fill = {"{prefix}": prefix, "{suffix}": suffix}
    return "".join(fill.get(part, part) for part in parts)


def context_comment(snippets: Sequence[SnippetLike], language: str) -> str:
    """The snippets as comments in the current file's language, each headed `Path: <file>`, as
    Copilot's neighbouring-tab prompts write them; goes before `path_header` and the prefix.
    Best last: a base model weighs what is nearest the code most."""
    sections = []
    for snippet in reversed(snippets):
        rows = [comment_line(language, f"Path: {snippet.filename}")]
        rows += [comment_line(language, row).rstrip() for row in snippet.text.split("\n")]
        sections.append("\n".join(rows) + "\n")
    return "".join(sections)


# Repository-level FIM: other files as whole sections ahead of the one being completed.
# Qwen2.5-Coder, github.com/QwenLM/Qwen2.5-Coder README, "Repository Level Code Infilling":
#   <|repo_name|>{repo_name}\n<|file_sep|>{file_path1}\n{file_content1}\n<|file_sep|>...
#   <|file_sep|>{current_path}\n<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>
# StarCoder2, "StarCoder 2 and The Stack v2" (arXiv 2402.19173), section 5, repository context:
#   <repo_name>reponame<file_sep>filepath0\ncode0<file_sep><fim_prefix>filepath1\ncode1_pre
#   <fim_suffix>code1_suf<fim_middle>  (no other line breaks; the path sits inside fim_prefix)
_QWEN_REPO = ("<|repo_name|>", "<|file_sep|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
_STARCODER2_REPO = ("<repo_name>", "<file_sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>")


def repo_fim_prompt(
    model: str,
    current_path: str,
    snippets: Sequence[SnippetLike],
    prefix: str,
    suffix: str,
    *,
    repo_name: str = "workspace",
) -> str | None:
    """A FIM prompt in the repository-level format of `model`'s family, the snippets as files
    before the current one (best last, nearest the code); None for families without one.
    A snippet that spells the format's own markers would be read as them: it is left out."""
    name = model.lower().rpartition("/")[2].replace("_", "-")
    if "qwen2.5-coder" in name:
        tokens, newline = _QWEN_REPO, "\n"
    elif "starcoder2" in name:
        tokens, newline = _STARCODER2_REPO, ""
    else:
        return None
    repo, sep, fim_prefix, fim_suffix, fim_middle = tokens
    parts = [repo, repo_name, newline]
    for snippet in reversed(snippets):
        if not any(token in snippet.text or token in snippet.filename for token in tokens):
            parts += [sep, snippet.filename, "\n", snippet.text, "\n"]
    if newline:
        parts += [sep, current_path, "\n", fim_prefix]
    else:
        parts += [sep, fim_prefix, current_path, "\n"]
    parts += [prefix, fim_suffix, suffix, fim_middle]
    return "".join(parts)


def chat_context(snippets: Sequence[SnippetLike]) -> str:
    """Snippets for a chat model's user message, ahead of the file being completed: each under
    its path in the same `<code>` blocks as that file, best first (a reader's order)."""
    if not snippets:
        return ""
    blocks = [f"File: {s.filename}\n<code>\n{s.text}\n</code>\n" for s in snippets]
    return "Code from other files of the project, for reference only:\n" + "".join(blocks) + "\n"


def chat_fim_messages(
    ctx: CompletionContext, *, multiline: bool, snippets: Sequence[SnippetLike] = ()
) -> tuple[str, str]:
    """(system, user) messages asking a chat model for the text at the cursor; `snippets`
    come ahead of the file, in the user message (the system message stays the same for every
    request, so a provider's prompt cache keeps it)."""
    scope = (
        "Complete the current block; several lines are fine."
        if multiline
        else "Complete the current line only; do not start a new line."
    )
    language = f" ({ctx.language})" if ctx.language else ""
    name = ctx.path or "untitled"
    user = (
        f"{chat_context(snippets)}"
        f"File: {name}{language}\n"
        "<code>\n"
        f"{ctx.prefix}{CURSOR}{ctx.suffix}\n"
        "</code>\n"
        f"{scope} Reply with the inserted text only."
    )
    return SYSTEM_PROMPT, user


CONTINUE = (
    "Your previous answer was cut off. Continue it exactly where it stopped, without repeating "
    "anything or commenting on the interruption."
)
"""Asked of the next chat provider when one fails in the middle of an answer (after the partial
answer, as the assistant's turn)."""


_BLOCK_STOPS = ("\n\n\n", "\n```")
_LANGUAGE_STOPS = {
    "python": ("\ndef ", "\nclass ", "\nif __name__", "\n#"),
    "javascript": ("\nfunction ", "\nexport ", "\nclass "),
    "typescript": ("\nfunction ", "\nexport ", "\nclass ", "\ninterface "),
    "go": ("\nfunc ", "\ntype "),
    "rust": ("\nfn ", "\npub fn ", "\nimpl ", "\nmod "),
    "ruby": ("\ndef ", "\nclass ", "\nmodule "),
    "java": ("\n    public ", "\n    private ", "\n    protected "),
    "markdown": ("\n#",),
}


def stop_sequences(ctx: CompletionContext, *, multiline: bool) -> tuple[str, ...]:
    """Where a suggestion ends, computed once for every provider: the end of the line in
    single-line mode; otherwise a blank-line run, a fence, or the start of the next top-level
    definition in the file's language (most specific first, so APIs that accept only a few —
    OpenAI takes four — keep the ones that matter)."""
    if not multiline:
        return ("\n",)
    return _BLOCK_STOPS + _LANGUAGE_STOPS.get(ctx.language.lower(), ())
