"""The LSP edge: pygls wiring and translation between LSP types and the services."""
