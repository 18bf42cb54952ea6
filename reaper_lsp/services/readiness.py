"""Who serves a session's completions right now, and whether the user has to do something about
it: the one reading that the Copilot-compatible status methods (`checkStatus`,
`statusNotification`, `didChangeStatus`) put in their words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from reaper_lsp.providers.base import LOCAL

if TYPE_CHECKING:
    from reaper_lsp.services.session import Session

Kind = Literal["Normal", "Warning", "Error"]
NOT_SIGNED_IN = (
    "You are not signed into GitHub Copilot: sign in to use it "
    "(reaper-lsp's offline engine completes meanwhile)"
)
"""copilot-lsp starts the GitHub sign-in when an Error says "not signed into"."""


@dataclass(frozen=True, slots=True)
class Readiness:
    kind: Kind
    """Normal; Warning: the remote providers are resting; Error: the user must sign in."""
    message: str
    serving: str
    """The provider that would answer first now (`local`: the offline engine)."""


def readiness(session: Session) -> Readiness:
    """The offline engine always answers, so this is about the remote providers only: an
    Error only when the chain wants Copilot, GitHub is signed out, and nothing else remote can
    answer — the one case where signing in is what the user must do."""
    order = session.settings.completion.providers
    chain = session.completion.chain
    serving = chain.usable(order)[0]
    if serving != LOCAL:
        return Readiness("Normal", f"reaper-lsp: completions from {serving}", serving)
    if "copilot" in order and not session.app.signin.accounts()["github"].signed_in:
        return Readiness("Error", NOT_SIGNED_IN, LOCAL)
    configured = [
        name
        for name in order
        if (provider := chain.providers.get(name)) is not None
        and provider.unusable_reason() is None
    ]
    if configured:
        return Readiness(
            "Warning",
            f"reaper-lsp: {', '.join(configured)} unavailable for now; the offline engine "
            "completes meanwhile",
            LOCAL,
        )
    return Readiness("Normal", "reaper-lsp: completions from the offline engine", LOCAL)
