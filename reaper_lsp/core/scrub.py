"""What may leave the machine: the files never sent anywhere, and the credential shapes replaced
by a placeholder in everything that is.

Files. A pattern without "/" matches the base name, one with "/" the path relative to the
workspace root (`**/` any depth, a leading "/" the root, a trailing "/" a whole directory).
Case is ignored: on Windows and macOS `.ENV` is `.env`, and on Linux a `KEY.PEM` is still a key;
a file wrongly excluded costs a remote suggestion, one wrongly sent cannot be taken back. The
secret stores under the home directory (`~/.ssh/`, `~/.aws/`...) are excluded whatever the
patterns.

Credentials. `scrub` replaces each credential-shaped string with `<secret:KIND>`; for a value
assigned to a name (`password = "..."`, `Bearer ...`) only the value. CPython's `re` skips ahead
in C only to a literal prefix: one alternation of every shape costs ~3 ms per 10 KB, a
look-behind in front of a shape ~0.3 ms. So each shape starts with a literal and checks what
precedes it afterwards, and names are found as literals in a lower-cased copy.
"""

from __future__ import annotations

import functools
import math
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_ed25519*", "id_ecdsa*",
    ".netrc", ".npmrc", ".pypirc", ".git-credentials", "*credentials*.json", "secrets.*", "*.kdbx",
)  # fmt: skip

# Relative to the home directory; also relative to a workspace root (the workspace may be home).
_SECRET_LOCATIONS = re.compile(
    r"(?:\.ssh|\.aws|\.gnupg|\.config/gh)(?:/.*)?|\.docker/config\.json|\.kube/config",
    re.IGNORECASE | re.DOTALL,
)
_CLIMB = re.compile(r"\A(?:\.\./)+")
_ABSOLUTE = re.compile(r"/|[A-Za-z]:/")


def _normalise(path: str) -> str:
    # Backslashes too: a Windows path can reach us either way, and reading one in a POSIX name
    # as a separator can only exclude more.
    return posixpath.normpath(path.replace("\\", "/")) if path else ""


def _glob(pattern: str) -> str:
    """`pattern` as a regex: `*` and `?` stop at "/", `**` does not, `**/` may match nothing,
    `[!a-z]` is a negated class as in fnmatch."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            slash = pattern.startswith("/", i + 2)
            out.append("(?:.*/)?" if slash else ".*")
            i += 3 if slash else 2
        elif char in "*?":
            out.append("[^/]*" if char == "*" else "[^/]")
            i += 1
        elif char == "[" and (end := pattern.find("]", i + 2)) > 0:
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = re.sub(r"([\\\[&~|^])", r"\\\1", body[negate:])
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _compile(patterns: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for pattern in patterns:
        try:
            parts.append(re.compile(_glob(pattern)).pattern)
        except re.error:  # "[z-a]": the user meant those characters
            parts.append(re.escape(pattern))
    return re.compile("|".join(f"(?:{p})" for p in parts) or "(?!)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Exclusions:
    """Paths whose content is never sent to a remote provider. Build it with `Exclusions.of`."""

    patterns: tuple[str, ...]
    home: str | None = None
    """The user's home directory, for the secret stores under it; unknown to a pure module."""
    _by_name: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _by_path: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: list[str] = []
        paths: list[str] = []
        for pattern in self.patterns:
            pattern = pattern.replace("\\", "/")
            if pattern.startswith("~/") and self.home:
                pattern = _normalise(self.home) + pattern[1:]
            if pattern.endswith("/"):  # a directory: everything under it, at any depth if bare
                bare = "/" not in pattern[:-1]
                pattern = ("**/" if bare else "") + pattern + "**"
            if pattern.startswith("/"):  # rooted: at a workspace root, or an absolute path
                paths += (pattern, pattern[1:])
            else:
                (paths if "/" in pattern else names).append(pattern)
        object.__setattr__(self, "_by_name", _compile(names))
        object.__setattr__(self, "_by_path", _compile(paths))

    @classmethod
    def of(
        cls,
        defaults: Iterable[str] = DEFAULT_EXCLUDE,
        extra: Iterable[str] = (),
        workspace_extra: Iterable[str] = (),
        *,
        home: str | None = None,
    ) -> Exclusions:
        """The configured patterns (`defaults`, `extra`) plus a workspace's additions. The
        built-in `DEFAULT_EXCLUDE` is always kept: a cloned repository's `.reaper.toml` (or an
        editor setting filled from it) may add patterns, never remove one."""
        merged = dict.fromkeys([*DEFAULT_EXCLUDE, *defaults, *extra, *workspace_extra])
        return cls(tuple(p for p in merged if p.strip()), home)

    def excludes(self, path: str) -> bool:
        """Whether the file at `path` (relative to its workspace root, POSIX separators, or
        absolute) must never reach a remote provider."""
        path = _normalise(path)
        name = path.rsplit("/", 1)[-1]
        if self._by_name.fullmatch(name) or self._by_path.fullmatch(path):
            return True
        return _SECRET_LOCATIONS.fullmatch(self._under_home(path)) is not None

    def _under_home(self, path: str) -> str:
        """`path` relative to the home directory. A relative path as it is, less any "../" in
        front: a workspace may be the home directory, or in it."""
        if path.startswith("~/"):
            return path[2:]
        if not _ABSOLUTE.match(path):
            return _CLIMB.sub("", path)
        home = _normalise(self.home or "").rstrip("/")
        if home and path[len(home) : len(home) + 1] == "/":
            return path[len(home) + 1 :] if path[: len(home)].lower() == home.lower() else ""
        return ""


# -- Credentials ------------------------------------------------------------------------------

# A credential never continues a word, a base64 run (an image, a lock-file hash) or a kebab-case
# name ("disk-sk-..."): what precedes each lead is checked against these (a class and a set).
_AFTER = r"[A-Za-z0-9_+/\-]"
_GLUE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+/-")


def _led(lead: str, rest: str) -> str:
    """`lead`, a literal, then `rest`; what precedes the lead is checked after it."""
    lit = re.escape(lead)
    return f"{lit}(?<!{_AFTER}{lit}){rest}"


def _random(alphabet: str, least: int, most: str = "") -> str:
    """A run of `alphabet` of a credential's length, never all lower-case letters: random
    credentials of that length have a digit or a capital, names and words do not."""
    run = f"[{alphabet}]"
    return f"(?={run}*[A-Z0-9]){run}{{{least},{most}}}+(?!{run})"


@dataclass(frozen=True, slots=True)
class _Shape:
    kind: str
    strict: str  # what `scrub` replaces; `(?P<kind_name>)` markers where it holds several kinds
    echo: str | None = None
    """Looser, for text we or a provider wrote (logs, errors), where a false positive costs
    nothing: also truncated and half-masked echoes ("sk-proj-abc***wxyz")."""


_TOKEN = r"A-Za-z0-9_\-"  # base64url: what most tokens are made of
_MIXED_CASE = rf"(?=[{_TOKEN}]*[A-Z])(?=[{_TOKEN}]*[0-9])"
# Base64 lines, PEM headers, "\n" escapes in JSON; never another BEGIN (each is scanned once).
_KEY_BODY = r"(?:(?!-----BEGIN)[A-Za-z0-9+/=\s:,.\\\-])"
_KEY_END = r"-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
_SHAPES: tuple[_Shape, ...] = (
    # A block cut short by a prompt budget is still a key: up to the end of the text.
    _Shape(
        "private-key",
        rf"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:{_KEY_BODY}*?{_KEY_END}"
        rf"|{_KEY_BODY}*+\Z)",
    ),
    _Shape(
        "jwt",
        _led("eyJ", rf"[{_TOKEN}]{{10,}}\.eyJ[{_TOKEN}]{{10,}}\.[{_TOKEN}]*"),
        rf"\beyJ[{_TOKEN}]+\.[{_TOKEN}]+\.[{_TOKEN}]*",
    ),
    _Shape(
        "openai-key",  # and Anthropic's and Stripe's, which share the lead
        _led(
            "sk",
            rf"(?:-ant-(?P<anthropic_key>){_random(_TOKEN, 32)}"
            rf"|-(?P<openai_key>)(?:{_MIXED_CASE}[{_TOKEN}]{{20,}}+"
            # Lower-case hex keys of OpenAI-compatible services.
            rf"|(?=[a-z0-9]*[0-9])[a-z0-9]{{32,}}+(?![{_TOKEN}]))"
            rf"|_(?:live|test)_(?P<stripe_key>){_random('A-Za-z0-9', 20)})",
        ),
        r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-*.]{6,}|\b[sr]k_(?:live|test)_[A-Za-z0-9*]{6,}",
    ),
    _Shape("stripe-key", _led("rk_", rf"(?:live|test)_{_random('A-Za-z0-9', 20)}")),
    _Shape(
        "github-token",
        _led("gh", rf"[pousr]_{_random('A-Za-z0-9', 36, '255')}"),
        r"\bgh[opsur]_[A-Za-z0-9]{6,}",
    ),
    _Shape(
        "github-token",
        _led("github_pat_", _random("A-Za-z0-9_", 22, "255")),
        r"\bgithub_pat_[A-Za-z0-9_]{6,}",
    ),
    _Shape(
        "aws-access-key",  # and Google API keys, which share the lead
        _led(
            "A",
            rf"(?:(?:KI|SI)A(?P<aws_access_key>)[A-Z0-9]{{16}}"
            rf"|Iza(?P<google_api_key>)[{_TOKEN}]{{35}})(?![{_TOKEN}])",
        ),
        rf"\b(?:A(?:KI|SI)A[A-Z0-9]{{16}}|AIza[{_TOKEN}]{{30,}})",
    ),
    _Shape(
        "slack-token",
        _led("xox", rf"[abposr]-(?=[A-Za-z0-9\-]*[0-9]){_random('A-Za-z0-9-', 20)}"),
    ),
    _Shape(
        "google-access-token",
        _led("ya29.", _random(_TOKEN + ".", 20)),
        rf"\bya29\.[{_TOKEN}.]+",
    ),
    _Shape(
        "google-refresh-token",
        _led("1//0", _random(_TOKEN, 30)),
        rf"\b1//[{_TOKEN}]{{10,}}",
    ),
    _Shape(
        "copilot-token",
        _led("tid=", rf"[{_TOKEN}]+;exp=[0-9]+[{_TOKEN}.:;=]*"),
        r"\btid=[^\s\"']+",
    ),
)

KINDS: tuple[str, ...] = (
    "private-key", "jwt", "anthropic-key", "openai-key", "stripe-key", "github-token",
    "aws-access-key", "aws-secret-key", "google-api-key", "slack-token", "google-access-token",
    "google-refresh-token", "copilot-token", "bearer-token", "password",
)  # fmt: skip

REDACTION_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(shape.echo) if shape.echo else re.compile(shape.strict, re.ASCII)
    for shape in _SHAPES
)
"""Every credential shape in its looser echo form, for redacting diagnostics (logs, errors)."""


def placeholder(kind: str) -> str:
    return f"<secret:{kind}>"


# The second half of a PEM block that a budget cut in two: key material from the start.
_KEY_TAIL = rf"{_KEY_BODY}*?{_KEY_END}"

# Searched in the lower-cased text: names and "Bearer" in any case.
_BEARER = _led(
    "bearer",
    r"[ \t]+(?P<value>(?=[a-z0-9._~+/\-]*[0-9])(?=[a-z0-9._~+/\-]*[a-z])[a-z0-9._~+/\-]{20,}+=*)"
    r"(?P<bearer_token>)",
)
_NAMES = ("pass", "pwd", "secret", "token", "api", "access", "private", "credential", "auth")
_KEY_SUFFIX = {"api": r"[_\-]?key", "access": r"[_\-]?key", "private": r"[_\-]?key"}
# Name, type annotation, `=` `:` `:=` `=>`, a quoted or bare value; bounded and possessive, so
# a long run of names ("tokentoken...") costs linear time. A value may be a placeholder (then
# declined): `secret: X = Y` must be read the same way before and after Y is replaced.
_ASSIGNED = (
    r"[a-z0-9_\-]{0,64}+(?:[\"'`]\]?|\])?[ \t]*(?::[ \t]*[a-z_][a-z0-9_.\[\], |]{0,64}+)?"
    r"(?:=>|:=|=(?!=)|:(?!:))[ \t]*"
    r"(?:[rbu]{0,2}(?P<q>[\"'`])(?P<value>[^\s\"'`\\{}]{8,1024}+)(?P=q)"
    r"|(?P<bare>[^\s\"'`\\{}()\[\],;]{8,1024}+)(?![^\s,;)\]}]))"
)
_AWS_SECRET = re.compile(r"[A-Za-z0-9/+=]{40}")
_PLACEHOLDER_WORDS = (
    "your", "example", "changeme", "change_me", "placeholder", "dummy", "redacted", "replace",
    "sample", "fake", "xxxx", "****", "...",
)  # fmt: skip
_NOT_A_LITERAL = ("$", "%", "/", "~", "./", "../")  # variables, formats, paths
# Format strings, URLs, placeholders ours ("<secret:jwt>") or not ("<API_KEY>"), CSS colours.
_NOT_SECRET = re.compile(r"%[-+ #0-9.]*[sdifxXreEgG(]|://|[<>]|\A#[0-9a-fA-F]{3,8}\Z")
_PARTS = re.compile(r"[_\-.:/@,+]+")
_WORDISH = re.compile(r"[A-Za-z]+[0-9]{0,4}|[0-9]+")
_HUMP = re.compile(r"[a-z][A-Z]")


def _is_wordish(part: str) -> bool:
    """A word, a camelCase name or a number ("oauth2", "getAccessToken", "2024"), not a random
    run: random letters change case every other character."""
    return _WORDISH.fullmatch(part) is not None and len(_HUMP.findall(part)) * 4 <= len(part)


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    return math.log2(len(text)) - sum(n * math.log2(n) for n in Counter(text).values()) / len(text)


def looks_secret(value: str) -> bool:
    """Whether `value`, assigned to a password-like name, is a secret rather than a name, path,
    version, URL, format string or placeholder ("<your key here>", "changeme", "xxxxxxxx")."""
    lowered, head = value.lower(), value[:64]  # a long value is judged by its start
    if value.startswith(_NOT_A_LITERAL) or _NOT_SECRET.search(value):
        return False
    if any(word in lowered for word in _PLACEHOLDER_WORDS):
        return False
    if sum(map(str.isalpha, head)) < 3:  # numbers, dates, addresses
        return False
    if value.islower() and not any(map(str.isdigit, value)):  # as for every other shape
        return False
    if all(_is_wordish(part) for part in _PARTS.split(head) if part):
        return False
    return _entropy(head) >= 2.5


_Span = tuple[int, int, str]
_Classify = Callable[[re.Match[str], str, str], _Span | None]


def _marked(match: re.Match[str], text: str, low: str) -> _Span | None:
    """The span and kind of a shape: the `value` group if any, the marker that matched."""
    groups = match.groupdict()
    kind = next(name for name, got in groups.items() if got == "")
    start, end = match.span("value") if groups.get("value") else match.span()
    return start, end, kind.replace("_", "-")


def _assigned(match: re.Match[str], text: str, low: str) -> _Span | None:
    """A value assigned to a password-like name, if it looks like a secret."""
    group = "value" if match.group("value") else "bare"
    start, end = match.span(group)
    value = text[start:end]
    if _AWS_SECRET.fullmatch(value):  # the whole name: "aws_" + "secret_access_key = "
        name = re.split(r"[^a-z0-9_\-]", low[max(0, match.start() - 64) : match.start()])[-1]
        name += low[match.start() : start]
        if "secret" in name and ("aws" in name or "access" in name):
            return start, end, "aws-secret-key"
    return (start, end, "password") if looks_secret(value) else None


def _marker(shape: _Shape) -> str:
    """`shape.strict`, with a marker naming its kind unless it has its own."""
    named = "(?P<" in shape.strict
    return shape.strict if named else f"(?:{shape.strict})(?P<{shape.kind.replace('-', '_')}>)"


_ASSIGNMENTS = [re.escape(name) + _KEY_SUFFIX.get(name, "") + _ASSIGNED for name in _NAMES]


@functools.cache
def _detectors() -> tuple[tuple[re.Pattern[str], bool, _Classify], ...]:
    """(pattern, searched in the lower-cased text, what a match means). Compiled on first use:
    it takes milliseconds, and most processes importing this (for logs) never scrub."""
    return (
        *((re.compile(_marker(shape), re.ASCII), False, _marked) for shape in _SHAPES),
        (re.compile(_BEARER, re.ASCII), True, _marked),
        *((re.compile(pattern, re.ASCII), True, _assigned) for pattern in _ASSIGNMENTS),
    )


def _lower(text: str) -> str:
    """`text` lower-cased, one character for one (only U+0130 lower-cases to two)."""
    low = text.lower()
    return low if len(low) == len(text) else text.replace("\u0130", "I").lower()


def _spans(text: str) -> tuple[list[_Span], bool]:
    """Every credential in `text`, the earliest (then longest, then first listed) of any
    overlapping ones; and whether replacing them may reveal more (see `scrub`)."""
    low = _lower(text)
    found: list[tuple[int, int, int, str]] = []
    for rank, (pattern, lowered, classify) in enumerate(_detectors()):
        pos = 0
        while (match := pattern.search(low if lowered else text, pos)) is not None:
            span = classify(match, text, low)
            if span is not None:
                found.append((span[0], -span[1], rank, span[2]))
            # A declined match may hold another: "password = password = '...'".
            pos = match.end() if span is not None else match.start() + 1
    if (tail := re.match(_KEY_TAIL, text)) is not None:
        found.append((0, -tail.end(), -1, "private-key"))
    spans: list[_Span] = []
    again = False
    for start, neg_end, _, kind in sorted(found):
        if not spans or start >= spans[-1][1]:
            spans.append((start, -neg_end, kind))
            glued = text[start - 1 : start] + text[-neg_end : 1 - neg_end]
            again = again or any(char in _GLUE for char in glued)
        elif -neg_end > spans[-1][1]:
            again = True  # the part of it past the one kept is looked at again
    return spans, again


@dataclass(frozen=True, slots=True)
class Scrubbed:
    text: str
    count: int
    """How many credentials were replaced."""
    kinds: tuple[str, ...]
    """Their kinds, each once, sorted."""


def scrub(text: str) -> Scrubbed:
    """`text` with every credential-shaped string replaced by `<secret:KIND>`."""
    count = 0
    kinds: set[str] = set()
    # Every shape looks one character beyond itself (what precedes its lead, what follows its
    # run) and none matches "<" or ">": only a replacement glued to a word, or an overlap cut
    # short, can make a second pass find more. Repeating until then makes scrubbing idempotent;
    # each pass replaces 8 or more characters no placeholder holds, so it ends within the bound.
    for _ in range(len(text) // 8 + 1):
        spans, again = _spans(text)
        pieces: list[str] = []
        last = 0
        for start, end, kind in spans:
            pieces += (text[last:start], placeholder(kind))
            last = end
        text = "".join(pieces) + text[last:]
        count += len(spans)
        kinds.update(kind for _, _, kind in spans)
        if not again:
            break
    return Scrubbed(text, count, tuple(sorted(kinds)))


def scrub_json(value: object) -> tuple[object, int]:
    """A copy of a JSON-like value (dicts, lists, tuples, strings, scalars) with every string in
    it, keys included, scrubbed; and how many credentials were replaced."""
    if isinstance(value, str):
        scrubbed = scrub(value)
        return scrubbed.text, scrubbed.count
    if isinstance(value, dict):
        pairs = [(scrub_json(key), scrub_json(item)) for key, item in value.items()]
        return {k: v for (k, _), (v, _) in pairs}, sum(m + n for (_, m), (_, n) in pairs)
    if isinstance(value, list | tuple):
        done = [scrub_json(item) for item in value]
        items = [item for item, _ in done]
        return (items if isinstance(value, list) else tuple(items)), sum(n for _, n in done)
    return value, 0
