"""Latency, cache, typing and memory benchmarks against the fake providers on loopback."""
