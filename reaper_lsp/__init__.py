"""reaper-lsp: AI code completion and chat for any editor that speaks LSP."""

__version__ = "0.1.0"
