"""Completion and chat back ends, and the chain that tries them in order."""
