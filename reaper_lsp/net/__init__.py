"""HTTP clients, stream decoders, retry policy and per-provider metrics."""
