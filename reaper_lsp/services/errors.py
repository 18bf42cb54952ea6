"""The errors services raise to whoever called them (the LSP handlers, the terminal commands):
each says what went wrong in words for the user, with no secret and no traceback. Errors from
the layers below (providers, auth, the network) are mapped to these where a service decides."""

from __future__ import annotations


class ServiceError(Exception):
    """A request a service could not serve; `str()` is the message for the user."""


class InvalidRequest(ServiceError):
    """The request itself was wrong (a missing field, an unknown name)."""


class ChatFailed(ServiceError):
    """No chat provider could answer (or finish) the question."""


class SignInFailed(ServiceError):
    """A sign-in, its confirmation or a sign-out could not be done."""


class ActionRefused(ServiceError):
    """A code action cannot be done (the document changed, is not open, the target is outside
    the project…)."""
