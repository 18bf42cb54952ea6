"""Plain data types shared by the pure core, the providers and the server."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Multiline(StrEnum):
    """How many lines a suggestion may span (`completion.multiline`)."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class CompletionContext:
    """What a provider needs to know about the cursor, cut to the configured budgets.

    `prefix` ends at the cursor and `suffix` starts there; both are cut at line boundaries
    except for the cursor's own line, which is always whole on both sides.
    """

    prefix: str
    suffix: str
    language: str
    path: str
    """Path relative to the workspace root when known, else the file name or URI path."""
    uri: str = ""
    """The document the context was cut from."""
    line: int = -1
    """The cursor's line in that document (0-based), -1 when unknown."""

    @property
    def line_prefix(self) -> str:
        """Text of the cursor's line before the cursor."""
        return self.prefix[self.prefix.rfind("\n") + 1 :]

    @property
    def line_suffix(self) -> str:
        """Text of the cursor's line after the cursor."""
        end = self.suffix.find("\n")
        return self.suffix if end < 0 else self.suffix[:end]


@dataclass(frozen=True, slots=True)
class ContextSnippet:
    """Code from another file (or a distant part of this one) shown to the model with the
    prompt, named by the path the prompt shows."""

    filename: str
    text: str


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A post-processed suggestion: `text` is inserted at the cursor."""

    text: str
    provider: str
    model: str = ""
