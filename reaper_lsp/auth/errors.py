"""The one base of every error a sign-in or credential problem raises: the server turns it into
a user message (-32803) and nothing else needs to know the flows' own classes."""

from __future__ import annotations


class AuthProblem(Exception):
    """A sign-in or credential problem; the message is for the user and holds no secret."""
