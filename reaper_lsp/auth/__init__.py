"""Sign-ins and the credentials they produce: the token store, GitHub's device flow with the
Copilot token exchange, and Google's loopback flow for Claude on Vertex AI."""
