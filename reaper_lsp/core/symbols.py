"""What a line of code names and defines, per language, recognised by pattern rather than
parsed: the buffer being edited rarely parses, and a line-local answer can be cached per line.

Also which languages may share code (a TypeScript file imports JavaScript, C++ includes C
headers), so that snippets are taken only from files the model can use.
"""

from __future__ import annotations

import re
from posixpath import splitext

_FAMILIES = {
    "python": "python", "cython": "python",
    "javascript": "js", "javascriptreact": "js", "typescript": "js", "typescriptreact": "js",
    "vue": "js", "svelte": "js",
    "c": "c", "cpp": "c", "objective-c": "c", "objective-cpp": "c", "cuda-cpp": "c", "cuda": "c",
    "java": "jvm", "kotlin": "jvm", "scala": "jvm", "groovy": "jvm",
    "csharp": "dotnet", "fsharp": "dotnet", "vb": "dotnet",
    "go": "go", "rust": "rust",
}  # fmt: skip
_EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".pyx": "python",
    ".js": "js", ".mjs": "js", ".cjs": "js", ".jsx": "js", ".ts": "js", ".mts": "js",
    ".cts": "js", ".tsx": "js", ".vue": "js", ".svelte": "js",
    ".c": "c", ".h": "c", ".cc": "c", ".cpp": "c", ".cxx": "c", ".hpp": "c", ".hh": "c",
    ".hxx": "c", ".m": "c", ".mm": "c", ".cu": "c", ".cuh": "c",
    ".java": "jvm", ".kt": "jvm", ".kts": "jvm", ".scala": "jvm", ".groovy": "jvm",
    ".cs": "dotnet", ".fs": "dotnet", ".vb": "dotnet",
    ".go": "go", ".rs": "rust", ".rb": "ruby", ".php": "php", ".swift": "swift", ".lua": "lua",
}  # fmt: skip

# Words every file of a language is full of: shared, they say nothing about relatedness, and
# they are never the name of something the user defined.
STOP_WORDS = frozenset(
    (
        "and", "as", "assert", "async", "await", "break", "case", "catch", "class", "const",
        "continue", "def", "default", "del", "delete", "do", "elif", "else", "enum", "except",
        "export", "extends", "false", "final", "finally", "fn", "for", "from", "func", "function",
        "global", "go", "if", "impl", "import", "in", "interface", "is", "lambda", "let", "match",
        "mod", "mut", "new", "nil", "none", "not", "null", "or", "package", "pass", "private",
        "protected", "pub", "public", "raise", "return", "self", "static", "struct", "super",
        "switch", "this", "throw", "throws", "true", "try", "type", "typeof", "use", "var", "void",
        "while", "with", "yield", "None", "True", "False", "Self", "int", "str", "bool", "float",
        "dict", "list", "tuple", "set", "bytes", "object", "string", "number", "boolean", "any",
        "undefined", "char", "long", "short", "double", "unsigned", "signed", "size_t", "auto",
        "include", "define", "ifdef", "ifndef", "endif", "u8", "u16", "u32", "u64", "i8", "i16",
        "i32", "i64", "f32", "f64", "usize", "isize",
    )
)  # fmt: skip

_IDENTIFIER = re.compile(r"[^\W\d]\w+")
_NAME = r"(?P<name>[^\W\d]\w*)"
_JS_NAME = r"(?P<name>[A-Za-z_$][\w$]*)"
_PATTERNS: dict[str, tuple[str, ...]] = {
    "python": (
        rf"[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+{_NAME}",
        rf"{_NAME}[ \t]*(?::[^=\n]*)?=(?!=)",  # module-level constants and aliases
    ),
    "js": (
        r"[ \t]*(?:export[ \t]+)?(?:default[ \t]+)?(?:declare[ \t]+)?(?:abstract[ \t]+)?"
        r"(?:async[ \t]+)?(?:function|class|interface|type|enum|namespace)\b[ \t]*\*?[ \t]*"
        + _JS_NAME,
        rf"[ \t]*(?:export[ \t]+)?(?:const|let|var)[ \t]+{_JS_NAME}",
        # methods and class fields holding functions
        r"[ \t]+(?:(?:public|private|protected|static|readonly|async|get|set|override)[ \t]+)*"
        rf"{_JS_NAME}[ \t]*(?:<[^>]*>)?"
        r"(?:\([^)'\"`]*\)[ \t]*(?::[^{]*)?\{|=[ \t]*(?:async[ \t]*)?\()",
    ),
    "go": (
        rf"func[ \t]+(?:\([^)]*\)[ \t]*)?{_NAME}",
        rf"(?:type|var|const)[ \t]+{_NAME}",
    ),
    "rust": (
        r"[ \t]*(?:pub(?:\([^)]*\))?[ \t]+)?"
        r"(?:(?:async|const|unsafe|default|extern(?:[ \t]+\"[^\"]*\")?)[ \t]+)*"
        rf"(?:fn|struct|enum|trait|type|mod|const|static|union|macro_rules!)[ \t]+{_NAME}",
    ),
}
_MODIFIERS = (
    r"(?:(?:public|private|protected|internal|static|final|abstract|sealed|partial|open|"
    r"data|inline|virtual|extern|export|override|suspend|async|local)[ \t]+)*"
)
_KEYWORD_LED = (
    rf"[ \t]*{_MODIFIERS}(?:def|fn|func|fun|function|class|struct|interface|trait|enum|"
    rf"module|object|protocol|extension|record|union|namespace)[ \t]+(?:[\w.:]+[.:])?{_NAME}"
)
_C_LIKE = (
    _KEYWORD_LED,
    rf"[ \t]*#[ \t]*define[ \t]+{_NAME}",
    # A function: type words, then the name and "(" — the first word must not be a statement.
    rf"[ \t]*(?P<types>(?:[A-Za-z_][\w:<>,\[\]]*[ \t*&]+)+)(?:\w+::)*{_NAME}[ \t]*\(",
)
_NOT_A_TYPE = frozenset(
    (
        "return", "else", "new", "throw", "case", "goto", "delete", "await", "yield", "sizeof",
        "typeof", "co_return", "co_yield", "print", "echo", "using", "import", "package",
    )
)  # fmt: skip
_COMPILED: dict[str, re.Pattern[str]] = {
    fam: re.compile("|".join(f"(?:{p})" for p in patterns).replace("(?P<name>", "(?:"))
    for fam, patterns in {**_PATTERNS, "c": _C_LIKE, "": (_KEYWORD_LED,)}.items()
}
"""A fast yes/no per family; only lines that match pay for the named-group patterns."""
_NAMED: dict[str, tuple[re.Pattern[str], ...]] = {
    fam: tuple(re.compile(p) for p in patterns)
    for fam, patterns in {**_PATTERNS, "c": _C_LIKE, "": (_KEYWORD_LED,)}.items()
}


def family(language: str, path: str = "") -> str:
    """Languages that share code map to one family; an unknown language is its own, and a
    missing one is guessed from the file's extension."""
    lang = language.lower()
    if lang:
        return _FAMILIES.get(lang, lang)
    return _EXTENSIONS.get(splitext(path)[1].lower(), "")


def identifiers(line: str) -> tuple[str, ...]:
    """The distinct identifiers in `line` (two characters at least), stop words left out; a
    tuple, which the garbage collector stops tracking (an index holds one per line)."""
    return tuple(frozenset(_IDENTIFIER.findall(line)) - STOP_WORDS)


def definitions(fam: str, line: str) -> tuple[str, ...]:
    """The names `line` defines (a function, class, type, constant…) in a language family."""
    kind = fam if fam in _NAMED else ("c" if fam in ("jvm", "dotnet", "php", "swift") else "")
    if _COMPILED[kind].match(line) is None:
        return ()
    for pattern in _NAMED[kind]:
        found = pattern.match(line)
        if found is None:
            continue
        types = found.groupdict().get("types")
        if types is not None and (types.split()[0] in _NOT_A_TYPE or "=" in types):
            continue
        name = found.group("name")
        if name not in STOP_WORDS and name not in _NOT_A_TYPE:
            return (name,)
    return ()
